-- update: replace a stored task, its request-id set and its index entries.
--
-- KEYS[1]  the task
-- ARGV[1]  the write's context, packed, with the version the caller saw (see context() in
--          write_helpers.lua)
-- ARGV[2]  the task's request ids, packed
-- ARGV[3]  task JSON
--
-- Returns the new version (the one this token already wrote, from its receipt); 0 if the
-- task is absent; -1 - the stored version on a conflict.

local c = context()
local earlier = earlier_result(c)
if earlier then return earlier end
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local version = stored_version(stored)
if c.seen ~= '' and tonumber(c.seen) ~= version then return -1 - version end
local ids, keep = unpack_strings(ARGV[2]), {}
for _, request_id in ipairs(ids) do keep[request_id] = true end
local dropped, entries, wrong_type = dropped_ids(c, keep)
write_task(c, KEYS[1], version + 1, ARGV[3], ids, wrong_type)
if not wrong_type then in_chunks('SREM', c.requests_key, dropped, 1) end
for _, entry in ipairs(entries) do redis.call('DEL', entry) end
keep_receipt(c, version + 1)
return version + 1
