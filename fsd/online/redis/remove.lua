-- Remove one feature version (ARGV[1], its slot) from the row KEYS[1]; 1 when the row changed.
local entries = parse(redis.call('GET', KEYS[1]))
local slot = tonumber(ARGV[1])
if entries[slot] == nil then return 0 end
entries[slot] = nil
local row, count = build(entries)
if count == 0 then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], row) end
return 1
