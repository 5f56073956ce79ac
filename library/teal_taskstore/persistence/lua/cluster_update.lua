-- update (cluster mode): replace a stored task and its request ids.
--
-- KEYS  the task, its request ids (HASH), this write's receipt (see cluster_helpers.lua)
-- ARGV[1]  the write's context, packed; ARGV[2] the request ids, packed; ARGV[3] task JSON
--
-- Returns {new version, request id dropped, the token that wrote its entry, ...} (a retry
-- answered from the receipt drops none: its entries are left stale, which readers ignore);
-- {0} if the task is absent; {-1 - stored version} on a conflict.

local c = context()
local earlier = earlier_result(c)
if earlier then return {earlier} end
local stored = redis.call('GET', KEYS[1])
if not stored then return {0} end
local version = stored_version(stored)
if c.seen ~= '' and tonumber(c.seen) ~= version then return {-1 - version} end
local ids, keep = unpack_strings(ARGV[2]), {}
for _, request_id in ipairs(ids) do keep[request_id] = true end
local dropped = dropped_ids(keep)
write_task(c, version + 1, ARGV[3], ids)
keep_receipt(c, version + 1)
return {version + 1, unpack(dropped)}
