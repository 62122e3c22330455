-- The same merge for many rows of one master in one call. Redis 7 lets a script flagged allow-cross-slot-keys touch
-- keys of several slots of its own node, provided they are not declared as KEYS (declared keys must share a slot):
-- ARGV[1] the replace flag, ARGV[2] the row count n, then n keys, then per key the offered values as one row blob.
local replace = ARGV[1] == '1'
local n = tonumber(ARGV[2])
local written, skipped = 0, 0
for i = 1, n do
  local key = ARGV[2 + i]
  local entries = parse(redis.call('GET', key))
  local changed = false
  for slot, value in pairs(parse(ARGV[2 + n + i])) do
    local old = entries[slot]
    local keep = true
    if old and not replace then
      local oe, oc = stamp(old)
      local ne, nc = stamp(value)
      if oe > ne or (oe == ne and oc > nc) then keep = false end
    end
    if keep then
      entries[slot] = value
      written = written + 1
      changed = true
    else
      skipped = skipped + 1
    end
  end
  if changed then
    local row = build(entries)
    redis.call('SET', key, row)
  end
end
return {written, skipped}
