-- load_by_request_id, second step (cluster mode): the task an index entry named, if its
-- request ids hold the request id.
--
-- KEYS[1]  the task; KEYS[2] its request ids (HASH)
-- ARGV[1]  the request id
--
-- Returns the stored task, or nil. Unlike layout v1 it removes no index entry: a writer may
-- have written the entry and not yet its task (entries come first in cluster mode).

if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return redis.call('GET', KEYS[1]) end
return nil
