-- delete: remove a task, its request-id set and the index entries that name it.
--
-- KEYS[1]  the task
-- ARGV[1]  the write's context, packed (see context() in write_helpers.lua)
--
-- Returns 1 when deleted, or when this token already deleted it (its receipt); 0 if the
-- task is absent.

local c = context()
local earlier = earlier_result(c)
if earlier then return earlier end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local _, entries = dropped_ids(c, {})
local doomed = {KEYS[1], c.requests_key}
for _, entry in ipairs(entries) do doomed[#doomed + 1] = entry end
for first = 1, #doomed, 1000 do  -- unpack() is bounded by Lua's stack
  redis.call('DEL', unpack(doomed, first, math.min(first + 999, #doomed)))
end
keep_receipt(c, 1)
return 1
