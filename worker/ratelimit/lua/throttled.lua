-- KEYS: tat, pause, state, log, storm. ARGV: retry_after_s, slot_ago_ms, cap,
-- Tuning.args(), about_rate ('0': a 503, which pauses but says nothing about our rate).
-- Returns the pause left (ms), the rate now in force, and how the 429 was read ('pause'
-- for a 503).
local now = now_ms()
local until_ms = now + tonumber(ARGV[1]) * 1000
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if until_ms > pause then
  redis.call('SET', KEYS[2], tostring(until_ms), 'PX', math.ceil(until_ms - now) + 1000)
  pause = until_ms
end
local T = tuning(ARGV, 3)
local st = load_state(KEYS[3], T, now)
local rate = current_rate(st, T, now)
if ARGV[T.next] == '0' then return {tostring(pause - now), tostring(rate), 'pause'} end
local slot_at = now - tonumber(ARGV[2])  -- the refused request's slot
-- A request that left before the last decision's pause ended (slots reserved earlier are
-- still going out) belongs to the storm that decision answered.
local decided = tonumber(st[4] or '0')
local news = slot_at > decided
-- What the service's sliding second held when the request left, as far as we sent it.
local seen = nil
if now - slot_at + 1000 <= T.log_ms then
  seen = redis.call('ZCOUNT', KEYS[4], '(' .. tostring(slot_at - 1000), tostring(slot_at))
end
local new_rate, how = nil, nil
local below_pace = seen and seen >= T.min_measured and seen < rate * T.margin * T.measured_below
if seen and ((news and below_pace) or (not news and st[5] == 'measured')) then
  -- A measured storm: its k-th refused request was the service's (limit + k)-th in its
  -- second, so each report, sorted by count, says limit = count - rank. Arrival order is
  -- not slot order (clumps, lag), so no one report is exact: take the median.
  if news then redis.call('DEL', KEYS[5]) end
  redis.call('RPUSH', KEYS[5], seen)
  redis.call('PEXPIRE', KEYS[5], math.ceil(T.log_ms))
  local counts = redis.call('LRANGE', KEYS[5], 0, -1)
  for j = 1, #counts do counts[j] = tonumber(counts[j]) end
  table.sort(counts)
  for j = 1, #counts do counts[j] = counts[j] - j end
  table.sort(counts)
  new_rate, how = counts[math.ceil(#counts / 2)], 'measured'
elseif news then
  -- At our own pace. At the cap the limit is known: a clump tipped one window over, and
  -- the pause is cost enough. Below it, the rate was found and may be a little high.
  local cut = T.jitter_decrease
  if rate >= T.cap then cut = 0 end
  if decided > 0 and st[5] ~= 'measured' and slot_at - decided < T.repeat_ms then
    -- Again soon after the last pause: not jitter. Cut, and each time twice as deep.
    cut = math.min(0.5, math.max(T.jitter_decrease, 2 * tonumber(st[5])))
  end
  new_rate, how = rate * (1 - cut), tostring(cut)
end
if new_rate then
  rate = math.max(T.min_rate, new_rate)
  redis.call('HSET', KEYS[3], 'rate', tostring(rate), 'since', tostring(now), 'mode', 'hold',
             'decided', tostring(math.max(now, pause)), 'how', how)
end
return {tostring(pause - now), tostring(rate), how or 'echo'}
