-- Shared by the limiter's scripts. `tuning(A, i)`: the cap at A[i], then Tuning.args(); `.next`
-- is the index after them. The state hash `rate:state` holds rate (at `since`), since (ms),
-- mode ('start': doubling; 'hold': holding, then probing), decided (ms: the end of the
-- last decision's pause) and how (that decision: 'measured', or the cut taken: '0.02').
local function tuning(A, i)
  local names = {'cap', 'margin', 'start', 'doubling_ms', 'measured_below', 'min_measured',
                 'jitter_decrease', 'repeat_ms', 'hold_ms', 'probe', 'idle_ms', 'log_ms',
                 'min_rate'}
  local T = {next = i + #names}
  for j, name in ipairs(names) do T[name] = tonumber(A[i + j - 1]) end
  return T
end
local function now_ms()
  local t = redis.call('TIME')
  return t[1] * 1000 + t[2] / 1000
end
-- The state, started (slow start) if there is none: a first request, or one after idle.
local function load_state(state_key, T, now)
  local st = redis.call('HMGET', state_key, 'rate', 'since', 'mode', 'decided', 'how')
  if not st[1] then
    st = {math.min(T.cap, T.start), now, 'start', nil, nil}
    redis.call('HSET', state_key, 'rate', st[1], 'since', st[2], 'mode', st[3])
  end
  redis.call('PEXPIRE', state_key, math.ceil(T.idle_ms))
  return st
end
local function current_rate(st, T, now)
  local base, elapsed = tonumber(st[1]), now - tonumber(st[2])
  local rate
  if st[3] == 'start' then
    rate = base * 2 ^ math.min(60, elapsed / T.doubling_ms)
  else
    rate = base * (1 + T.probe * math.max(0, elapsed - T.hold_ms) / 1000)
  end
  return math.min(T.cap, rate)
end
