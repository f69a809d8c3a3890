-- KEYS: tat, pause, state, log. ARGV: cap, Tuning.args(). The rate in force now (requests/s).
local now = now_ms()
local T = tuning(ARGV, 1)
local st = redis.call('HMGET', KEYS[3], 'rate', 'since', 'mode', 'decided', 'how')
if not st[1] then return tostring(math.min(T.cap, T.start)) end
return tostring(current_rate(st, T, now))
