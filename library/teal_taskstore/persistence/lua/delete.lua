-- delete: remove a task, its request-id set and the index entries that name it.
--
-- KEYS[1]  the task
-- KEYS[2]  the task's request-id set
-- KEYS[3]  the delete tombstone
-- ARGV[1]  index key prefix
-- ARGV[2]  task id
-- ARGV[3]  write token
-- ARGV[4]  tombstone lifetime in seconds
--
-- Returns 1 when deleted, or when this token already deleted it; 0 if the task is absent.

if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('GET', KEYS[3]) == ARGV[3] then return 1 end
  return 0
end
unindex(KEYS[2], {})
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], ARGV[3], 'EX', tonumber(ARGV[4]))
return 1
