-- load_by_request_id: the task an index entry names, if its request-id set holds the id.
--
-- KEYS[1]  the request id's index entry
-- ARGV[1]  task key prefix
-- ARGV[2]  request-id set key prefix
-- ARGV[3]  request id
--
-- Returns the stored task the entry names if that task's request-id set holds the request
-- id; else nil, after removing the entry. The caller still checks the task's items: under
-- an eviction policy a set can outlive its task and be inherited by a new one.

local task_id = redis.call('GET', KEYS[1])
if not task_id then return nil end
if redis.call('SISMEMBER', ARGV[2] .. task_id, ARGV[3]) == 1 then
  local stored = redis.call('GET', ARGV[1] .. task_id)
  if stored then return stored end
end
redis.call('DEL', KEYS[1])
return nil
