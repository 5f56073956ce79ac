-- create (cluster mode): store a new task and its request ids.
--
-- KEYS  the task, its request ids (HASH), this write's receipt (see cluster_helpers.lua)
-- ARGV[1]  the write's context, packed; ARGV[2] the request ids, packed; ARGV[3] task JSON
--
-- Returns 1 when created (or when this token already created it); 0 if the id exists.

local c = context()
local earlier = earlier_result(c)
if earlier then return earlier end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
write_task(c, 1, ARGV[3], unpack_strings(ARGV[2]))
keep_receipt(c, 1)
return 1
