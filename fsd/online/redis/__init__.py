"""The Redis Cluster online engine: `adapter` (the OnlineStore over fsd's own cluster client) and its server-side
scripts (rows.lua, merge.lua, remove.lua)."""
