-- KEYS: pause. The pause left (ms, 0 if none), by Redis' clock.
local until_ms = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = redis.call('TIME')
return tostring(math.max(0, until_ms - (t[1] * 1000 + t[2] / 1000)))
