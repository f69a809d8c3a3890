-- KEYS: lease... ARGV: one token per key. Give back only leases still ours.
local released = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then
    released = released + redis.call('DEL', key)
  end
end
return released
