-- Reserving a slot, as a Lua function other scripts can include: the outcome store's
-- scripts take the slot for a row's next Graph call in the same round trip as its write.
-- K: tat, pause, state, log. A: burst, cap, Tuning.args(), then optionally the id of a
-- slot given up (it leaves the log: no request will fill it).
-- Returns {wait_ms, 1, id}: the slot `id` is ours at now+wait_ms. (A 0 in place of the 1
-- would mean "no slot: wait, then ask again"; callers still understand it.)
-- Needs limiter_functions.lua before it.
local function reserve_slot(K, A)
  local now = now_ms()
  local burst = tonumber(A[1])
  local T = tuning(A, 2)
  local st = load_state(K[3], T, now)
  local tat = tonumber(redis.call('GET', K[1]) or '0')
  if tat < now then tat = now end
  -- In a pause, the slot comes after it: the callers wake one by one when it ends, not
  -- all at once (256 threads asking again at the same moment come out in a clump).
  local pause = tonumber(redis.call('GET', K[2]) or '0')
  if pause > tat then tat = pause end
  -- Spaced by the rate in force at the slot's own time: 256 threads reserving at once
  -- in slow start must not all be spaced by its first, lowest rate.
  local interval = 1000 / (current_rate(st, T, tat) * T.margin)
  local wait = math.max(0, tat - interval * (burst - 1) - now)
  local new_tat = tat + interval
  redis.call('SET', K[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  -- Slot times grow strictly (by interval at least): the time names the slot.
  local id = string.format('%.3f', now + wait)
  redis.call('ZADD', K[4], id, id)
  local given_up = A[T.next]
  if given_up and given_up ~= '' then redis.call('ZREM', K[4], given_up) end
  redis.call('ZREMRANGEBYSCORE', K[4], '-inf', now - T.log_ms)
  redis.call('PEXPIRE', K[4], math.ceil(T.log_ms))
  return {tostring(wait), 1, id}
end
