-- Functions shared by the write scripts (create, update, delete); the loader puts this file
-- in front of each of them. In every write script ARGV[1] is the index key prefix and
-- ARGV[2] the task id.

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

-- The header of a stored task: version (0 if unreadable) and writer token.
local function header(stored)
  local version, writer = string.match(stored, '^(%d+):(%x*):')
  return tonumber(version) or 0, writer
end

-- Drops the index entries of the task's request ids that are not in keep (those that
-- still name this task), and the task's request-id set.
local function unindex(requests_key, keep)
  for _, request_id in ipairs(redis.call('SMEMBERS', requests_key)) do
    if not keep[request_id] and redis.call('GET', ARGV[1] .. request_id) == ARGV[2] then
      redis.call('DEL', ARGV[1] .. request_id)
    end
  end
  redis.call('DEL', requests_key)
end

-- Writes the task, its request-id set and its index entries, all with one expiry.
local function write_task(task_key, requests_key, value, ttl, ids)
  set_with_expiry(task_key, value, ttl)
  for first = 1, #ids, 1000 do  -- unpack() is bounded by Lua's stack
    redis.call('SADD', requests_key, unpack(ids, first, math.min(first + 999, #ids)))
  end
  if ttl > 0 and #ids > 0 then redis.call('EXPIRE', requests_key, ttl) end
  for _, request_id in ipairs(ids) do
    set_with_expiry(ARGV[1] .. request_id, ARGV[2], ttl)
  end
end
