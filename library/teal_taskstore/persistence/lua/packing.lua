-- Unpacking the strings the manager packs (redis_scripts.pack_strings): the loader puts
-- this file in front of the write helpers of both key layouts.
--
-- Strings arrive packed as "<byte length>:<string>" one after another (binary safe).
local function unpack_strings(packed)
  local strings, position = {}, 1
  while position <= #packed do
    local colon = string.find(packed, ':', position, true)
    local length = tonumber(string.sub(packed, position, colon - 1))
    strings[#strings + 1] = string.sub(packed, colon + 1, colon + length)
    position = colon + length + 1
  end
  return strings
end
