-- Functions shared by the cluster-mode write scripts (layout v2); the loader puts this file
-- in front of each of them. Every key is in KEYS and they share the task's hash tag:
-- KEYS[1] the task, KEYS[2] its request ids (a HASH: request id -> the token of the write
-- that last wrote its index entry), KEYS[3] this write's receipt. Index entries live in other
-- slots: the manager writes them ("<token>:<task id>") before the script and removes the
-- stale ones (returned by the script with their token) after it, each only if it still holds
-- what that write put there, so a later write that indexed the id again keeps its entry.
--
-- As in write_helpers.lua, each script checks first and writes after, its first write a
-- SET (or, for delete, a DEL), so Redis refuses it under maxmemory before it writes.

-- ARGV[1] packed: ttl and receipt lifetime in seconds (ttl 0: no expiry), the write token,
-- the version the caller saw ('' for none) and '1' when the caller is retrying, else '0'.
local function context()
  local s = unpack_strings(ARGV[1])
  return {ttl = tonumber(s[1]), receipt_seconds = s[2], token = s[3], seen = s[4],
          retry = s[5] == '1'}
end

local function earlier_result(c)
  if not c.retry then return nil end
  local receipt = redis.call('GET', KEYS[3])
  return receipt and tonumber(receipt)
end

local function stored_version(stored)
  return tonumber(string.match(stored, '^(%d+):')) or 0
end

-- The recorded request ids that are not in keep, each followed by the token that wrote its
-- entry: {id, token, id, token, ...} (none if the key has the wrong type).
local function dropped_ids(keep)
  local fields = redis.pcall('HGETALL', KEYS[2])
  local dropped = {}
  if type(fields) ~= 'table' or fields.err then return dropped end
  for i = 1, #fields, 2 do
    if not keep[fields[i]] then
      dropped[#dropped + 1] = fields[i]
      dropped[#dropped + 1] = fields[i + 1]
    end
  end
  return dropped
end

-- The task first, then its request ids replaced (each with this write's token, which the
-- manager put in their entries), both with one expiry.
local function write_task(c, version, task_json, ids)
  if c.ttl > 0 then
    redis.call('SET', KEYS[1], version .. ':' .. c.token .. ':' .. task_json, 'EX', c.ttl)
  else
    redis.call('SET', KEYS[1], version .. ':' .. c.token .. ':' .. task_json)
  end
  redis.call('DEL', KEYS[2])
  local batch = {}
  for i, request_id in ipairs(ids) do
    batch[#batch + 1] = request_id
    batch[#batch + 1] = c.token
    if #batch >= 1000 or i == #ids then
      redis.call('HSET', KEYS[2], unpack(batch))
      batch = {}
    end
  end
  if c.ttl > 0 and #ids > 0 then redis.call('EXPIRE', KEYS[2], c.ttl) end
end

local function keep_receipt(c, result)
  redis.call('SET', KEYS[3], string.format('%d', result), 'EX', c.receipt_seconds)
end
