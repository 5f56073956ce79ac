-- update: replace a stored task, its request-id set and its index entries.
--
-- KEYS[1]  the task
-- KEYS[2]  the task's request-id set
-- ARGV[1]  index key prefix
-- ARGV[2]  task id
-- ARGV[3]  task JSON
-- ARGV[4]  ttl in seconds (0: no expiry)
-- ARGV[5]  write token
-- ARGV[6]  the task's request ids, packed
-- ARGV[7]  the version the caller saw ('' to replace whatever is stored)
--
-- Returns the new version (the stored one if this token already wrote it); 0 if the task
-- is absent; -1 - the stored version on a conflict.

local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local version, writer = header(stored)
if writer == ARGV[5] then return version end
if ARGV[7] ~= '' and tonumber(ARGV[7]) ~= version then return -1 - version end
local ids, keep = unpack_ids(ARGV[6]), {}
for _, request_id in ipairs(ids) do keep[request_id] = true end
unindex(KEYS[2], keep)
write_task(KEYS[1], KEYS[2], (version + 1) .. ':' .. ARGV[5] .. ':' .. ARGV[3],
  tonumber(ARGV[4]), ids)
return version + 1
