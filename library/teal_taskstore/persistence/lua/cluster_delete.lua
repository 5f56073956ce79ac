-- delete (cluster mode): remove a task and its request ids.
--
-- KEYS  the task, its request ids (HASH), this write's receipt (see cluster_helpers.lua)
-- ARGV[1]  the write's context, packed
--
-- Returns {1, each request id the task had followed by the token that wrote its entry...}
-- when deleted ({1} when this token already deleted it); {0} if the task is absent.

local c = context()
local earlier = earlier_result(c)
if earlier then return {earlier} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local dropped = dropped_ids({})
redis.call('DEL', KEYS[1], KEYS[2])
keep_receipt(c, 1)
return {1, unpack(dropped)}
