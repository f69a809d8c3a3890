-- KEYS: inflight. ARGV: ttl (ms), then the chunks. Each held until Redis' now + ttl.
local t = redis.call('TIME')
local deadline = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], deadline, ARGV[i]) end
return #ARGV - 1
