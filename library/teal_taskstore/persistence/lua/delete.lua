-- delete: remove a task, its request-id set and the index entries that name it.
--
-- KEYS[1]  the task
-- ARGV[1]  the write's context, packed (see context() in write_helpers.lua)
--
-- Returns 1 when deleted, or when this token already deleted it (its receipt); 0 if the
-- task is absent.

local c = context()
local receipt = redis.call('GET', c.receipt_key)
if receipt then return tonumber(receipt) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local stale = stale_entries(c, {})
redis.call('DEL', KEYS[1], c.requests_key)
for _, entry in ipairs(stale) do redis.call('DEL', entry) end
keep_receipt(c, 1)
return 1
