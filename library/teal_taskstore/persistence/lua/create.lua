-- create: store a new task with its request-id set and index entries.
--
-- KEYS[1]  the task
-- KEYS[2]  the task's request-id set
-- ARGV[1]  index key prefix
-- ARGV[2]  task id
-- ARGV[3]  task JSON
-- ARGV[4]  ttl in seconds (0: no expiry)
-- ARGV[5]  write token
-- ARGV[6]  the task's request ids, packed
--
-- Returns 1 when created, or when this token already created it; 0 if the id exists.

local stored = redis.call('GET', KEYS[1])
if stored then
  local _, writer = header(stored)
  if writer == ARGV[5] then return 1 end
  return 0
end
write_task(KEYS[1], KEYS[2], '1:' .. ARGV[5] .. ':' .. ARGV[3], tonumber(ARGV[4]),
  unpack_ids(ARGV[6]))
return 1
