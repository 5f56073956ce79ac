-- delete: remove a task, its request-id set and the index entries that name it.
--
-- KEYS[1]  the task
-- KEYS[2]  the task's request-id set
-- KEYS[3]  this write's receipt
-- ARGV[1]  index key prefix
-- ARGV[2]  task id
-- ARGV[3]  receipt lifetime in seconds
--
-- Returns 1 when deleted, or when this token already deleted it (its receipt); 0 if the
-- task is absent.

local receipt = redis.call('GET', KEYS[3])
if receipt then return tonumber(receipt) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local stale = stale_entries(KEYS[2], {})
redis.call('DEL', KEYS[1], KEYS[2])
for _, entry in ipairs(stale) do redis.call('DEL', entry) end
keep_receipt(KEYS[3], 1, ARGV[3])
return 1
