-- KEYS: inflight. ARGV: now_ms, limit, next_deadline_ms. Claim the chunks whose holder
-- stopped renewing them by pushing their deadline out, atomically, so only one sweeper
-- re-sends each; if that sweeper dies before sending, the chunk expires again.
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, chunk in ipairs(expired) do redis.call('ZADD', KEYS[1], ARGV[3], chunk) end
return expired
