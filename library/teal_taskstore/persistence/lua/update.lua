-- update: replace a stored task, its request-id set and its index entries.
--
-- KEYS[1]  the task
-- KEYS[2]  the task's request-id set
-- KEYS[3]  this write's receipt
-- ARGV[1]  index key prefix
-- ARGV[2]  task id
-- ARGV[3]  task JSON
-- ARGV[4]  ttl in seconds (0: no expiry)
-- ARGV[5]  write token
-- ARGV[6]  the task's request ids, packed
-- ARGV[7]  receipt lifetime in seconds
-- ARGV[8]  the version the caller saw ('' to replace whatever is stored)
--
-- Returns the new version (the one this token already wrote, from its receipt); 0 if the
-- task is absent; -1 - the stored version on a conflict.

local receipt = redis.call('GET', KEYS[3])
if receipt then return tonumber(receipt) end
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local version = stored_version(stored)
if ARGV[8] ~= '' and tonumber(ARGV[8]) ~= version then return -1 - version end
local ids, keep = unpack_ids(ARGV[6]), {}
for _, request_id in ipairs(ids) do keep[request_id] = true end
local stale = stale_entries(KEYS[2], keep)
write_task(KEYS[1], KEYS[2], (version + 1) .. ':' .. ARGV[5] .. ':' .. ARGV[3],
  tonumber(ARGV[4]), ids)
for _, entry in ipairs(stale) do redis.call('DEL', entry) end
keep_receipt(KEYS[3], version + 1, ARGV[7])
return version + 1
