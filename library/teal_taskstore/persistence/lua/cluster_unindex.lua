-- Removes a stale index entry (cluster mode) if it still names this task.
--
-- KEYS[1]  the request id's index entry
-- ARGV[1]  the task id
--
-- Returns 1 if removed, else 0.

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
