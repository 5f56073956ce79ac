-- Functions shared by the write scripts (create, update, delete); the loader puts this file
-- in front of each of them. In every write script ARGV[1] is the index key prefix and
-- ARGV[2] the task id.
--
-- Every write script reads and checks all it needs first and writes only after that, so it
-- never stops half-way; and its first write is a SET (or, for delete, a DEL): Redis refuses
-- a script under maxmemory exactly when its first write is one that needs memory.

local function set_with_expiry(key, value, ttl)
  if ttl > 0 then redis.call('SET', key, value, 'EX', ttl) else redis.call('SET', key, value) end
end

-- Request ids arrive packed as "<byte length>:<id>" one after another (binary safe).
local function unpack_ids(packed)
  local ids, position = {}, 1
  while position <= #packed do
    local colon = string.find(packed, ':', position, true)
    local length = tonumber(string.sub(packed, position, colon - 1))
    ids[#ids + 1] = string.sub(packed, colon + 1, colon + length)
    position = colon + length + 1
  end
  return ids
end

-- The version in a stored task's header (0 if unreadable).
local function stored_version(stored)
  return tonumber(string.match(stored, '^(%d+):')) or 0
end

-- Read-only: the index entries of the task's recorded request ids that are not in keep
-- and still name this task. A request-id set of the wrong type counts as empty (it is
-- replaced when the task is written).
local function stale_entries(requests_key, keep)
  local members = redis.pcall('SMEMBERS', requests_key)
  local stale = {}
  if type(members) ~= 'table' or members.err then return stale end
  for _, request_id in ipairs(members) do
    local entry = ARGV[1] .. request_id
    if not keep[request_id] and redis.pcall('GET', entry) == ARGV[2] then
      stale[#stale + 1] = entry
    end
  end
  return stale
end

-- Writes the task first, then its request-id set and index entries, all with one expiry.
local function write_task(task_key, requests_key, value, ttl, ids)
  set_with_expiry(task_key, value, ttl)
  redis.call('DEL', requests_key)
  for first = 1, #ids, 1000 do  -- unpack() is bounded by Lua's stack
    redis.call('SADD', requests_key, unpack(ids, first, math.min(first + 999, #ids)))
  end
  if ttl > 0 and #ids > 0 then redis.call('EXPIRE', requests_key, ttl) end
  for _, request_id in ipairs(ids) do
    set_with_expiry(ARGV[1] .. request_id, ARGV[2], ttl)
  end
end

-- Records what this write did under its token, for as long as its caller may retry it.
local function keep_receipt(receipt_key, result, seconds)
  redis.call('SET', receipt_key, string.format('%d', result), 'EX', seconds)
end
