-- Functions shared by the write scripts (create, update, delete); the loader puts this file
-- in front of each of them.
--
-- Every write script reads and checks all it needs first and writes only after that, so it
-- never stops half-way; and its first write is a SET (or, for delete, a DEL): Redis refuses
-- a script under maxmemory exactly when its first write is one that needs memory.

-- The write's context, ARGV[1] packed: the key prefixes of request-id sets, index entries
-- and receipts, the ttl and receipt lifetime in seconds (ttl 0: no expiry), the task id,
-- the write token, for update the version the caller saw ('' to replace whatever is stored,
-- and for the other writes), and '1' when the caller is retrying this write, else '0'.
local function context()
  local s = unpack_strings(ARGV[1])
  return {
    requests_key = s[1] .. s[6], index_prefix = s[2], receipt_key = s[3] .. s[7],
    ttl = tonumber(s[4]), receipt_seconds = s[5], task_id = s[6], token = s[7], seen = s[8],
    retry = s[9] == '1',
  }
end

-- What this token's write already did, if the caller is retrying it and it went through.
local function earlier_result(c)
  if not c.retry then return nil end
  local receipt = redis.call('GET', c.receipt_key)
  return receipt and tonumber(receipt)
end

local function set_with_expiry(key, value, ttl)
  if ttl > 0 then redis.call('SET', key, value, 'EX', ttl) else redis.call('SET', key, value) end
end

-- The version in a stored task's header (0 if unreadable).
local function stored_version(stored)
  return tonumber(string.match(stored, '^(%d+):')) or 0
end

-- Read-only: the task's recorded request ids that are not in keep, and those of their index
-- entries that still name this task. A request-id set of the wrong type is reported (it is
-- replaced when the task is written).
local function dropped_ids(c, keep)
  local members = redis.pcall('SMEMBERS', c.requests_key)
  local dropped, entries = {}, {}
  if type(members) ~= 'table' or members.err then return dropped, entries, true end
  for _, request_id in ipairs(members) do
    if not keep[request_id] then
      dropped[#dropped + 1] = request_id
      local entry = c.index_prefix .. request_id
      if redis.pcall('GET', entry) == c.task_id then entries[#entries + 1] = entry end
    end
  end
  return dropped, entries, false
end

-- Calls command(key, ...) with the strings of list from position first on, in chunks
-- (unpack() is bounded by Lua's stack).
local function in_chunks(command, key, list, first)
  for from = first, #list, 1000 do
    redis.call(command, key, unpack(list, from, math.min(from + 999, #list)))
  end
end

-- Writes the task first, then adds its request ids to its set (replacing a set of the
-- wrong type) and writes its index entries, all with one expiry.
local function write_task(c, task_key, version, task_json, ids, wrong_type)
  set_with_expiry(task_key, version .. ':' .. c.token .. ':' .. task_json, c.ttl)
  local added = false
  if #ids > 0 and not wrong_type then
    local reply = redis.pcall('SADD', c.requests_key, unpack(ids, 1, math.min(1000, #ids)))
    added = not (type(reply) == 'table' and reply.err)
  end
  if added then
    in_chunks('SADD', c.requests_key, ids, 1001)
  else
    redis.call('DEL', c.requests_key)
    in_chunks('SADD', c.requests_key, ids, 1)
  end
  if c.ttl > 0 and #ids > 0 then redis.call('EXPIRE', c.requests_key, c.ttl) end
  for _, request_id in ipairs(ids) do
    set_with_expiry(c.index_prefix .. request_id, c.task_id, c.ttl)
  end
end

-- Records what this write did under its token, for as long as its caller may retry it.
local function keep_receipt(c, result)
  redis.call('SET', c.receipt_key, string.format('%d', result), 'EX', c.receipt_seconds)
end
