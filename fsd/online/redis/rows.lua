-- The row merge of fsd.codec._rows_py.merge_rows on the server. A row: 0x01, count (u16 LE), then per entry slot (u32 LE), length (u32 LE), value; a value starts with its header
-- 0x01, dtype, flags, event time (i64 LE), created time (i64 LE). Times are below 2^53 (validated), exact in Lua.
-- The specification is fsd.codec._rows_py (merge_rows, remove_slot); tests/unit/online/test_lua_merge.py compares them.
local function parse(row)
  local entries = {}
  if row and #row >= 3 and string.byte(row, 1) == 1 then
    local count = struct.unpack('<I2', row, 2)
    local pos = 4
    for _ = 1, count do
      local slot, len = struct.unpack('<I4I4', row, pos)
      pos = pos + 8
      entries[slot] = string.sub(row, pos, pos + len - 1)
      pos = pos + len
    end
  end
  return entries
end
local function build(entries)
  local slots = {}
  for s, _ in pairs(entries) do slots[#slots + 1] = s end
  table.sort(slots)
  local parts = {struct.pack('<BI2', 1, #slots)}
  for _, s in ipairs(slots) do
    local v = entries[s]
    parts[#parts + 1] = struct.pack('<I4I4', s, #v)
    parts[#parts + 1] = v
  end
  return table.concat(parts), #slots
end
local function stamp(v)
  if #v >= 19 and string.byte(v, 1) == 1 then
    local e, c = struct.unpack('<i8i8', v, 4)
    return e, c
  end
  return -1, -1
end
