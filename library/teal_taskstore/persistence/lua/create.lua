-- create: store a new task with its request-id set and index entries.
--
-- KEYS[1]  the task
-- ARGV[1]  the write's context, packed (see context() in write_helpers.lua)
-- ARGV[2]  the task's request ids, packed
-- ARGV[3]  task JSON
--
-- Returns 1 when created, or when this token already created it (its receipt); 0 if the
-- id exists.

local c = context()
local earlier = earlier_result(c)
if earlier then return earlier end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
-- A set left at this id (a task evicted without it) is added to, not replaced: its extra
-- ids name no task that holds them, and readers check the task's items.
write_task(c, KEYS[1], 1, ARGV[3], unpack_strings(ARGV[2]), false)
keep_receipt(c, 1)
return 1
