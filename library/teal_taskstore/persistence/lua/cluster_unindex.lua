-- Removes a stale index entry (cluster mode) if it still holds what the write that last
-- indexed the request id for this task put there: a later write that indexed it again wrote
-- another token, and its entry stays.
--
-- KEYS[1]  the request id's index entry
-- ARGV[1]  the entry as that write made it, "<token>:<task id>"
--
-- Returns 1 if removed, else 0.

if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
