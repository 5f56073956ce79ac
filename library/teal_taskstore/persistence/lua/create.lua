-- create: store a new task with its request-id set and index entries.
--
-- KEYS[1]  the task
-- KEYS[2]  the task's request-id set
-- KEYS[3]  this write's receipt
-- ARGV[1]  index key prefix
-- ARGV[2]  task id
-- ARGV[3]  task JSON
-- ARGV[4]  ttl in seconds (0: no expiry)
-- ARGV[5]  write token
-- ARGV[6]  the task's request ids, packed
-- ARGV[7]  receipt lifetime in seconds
--
-- Returns 1 when created, or when this token already created it (its receipt); 0 if the
-- id exists.

local receipt = redis.call('GET', KEYS[3])
if receipt then return tonumber(receipt) end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
write_task(KEYS[1], KEYS[2], '1:' .. ARGV[5] .. ':' .. ARGV[3], tonumber(ARGV[4]),
  unpack_ids(ARGV[6]))
keep_receipt(KEYS[3], 1, ARGV[7])
return 1
