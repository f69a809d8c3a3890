-- KEYS: rows, batch, meeting, lease, stats, valve, open batches, working. ARGV: seq, JSON, state,
-- ttl_s, stamp, token, meeting state ('' none), registration id, row ref, kind, idem_ttl_s,
-- signature ('ok', a failure's 'status code', '' when no Graph call decided the row), user,
-- window, min users, failure text, batch id.
-- The row's final state, the meeting's outcome and the lease's release, atomically: a
-- crash can never leave a registered meeting without its record. Then the safety valve:
-- when the batch's last `window` rows that reached Graph all failed with the same
-- signature, for at least `min users` organizers, the batch pauses (a systemic
-- error pauses the batch and tells the operator, rather than burn through every row).
-- Returns {saved (see set_row), 1 when this row paused the batch}.
-- Needs the row functions before it.
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[3], 'state', ARGV[7], 'registration_id', ARGV[8],
             'done_by', ARGV[9], 'kind', ARGV[10], 'updated_at', ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[11])
end
local saved = set_row(KEYS[1], KEYS[2], KEYS[5], KEYS[8], ARGV[1], ARGV[2], ARGV[3], true,
                      ARGV[4], ARGV[5], {KEYS[7], ARGV[17]})
if ARGV[6] ~= '' and redis.call('GET', KEYS[4]) == ARGV[6] then redis.call('DEL', KEYS[4]) end
local window = tonumber(ARGV[14])
if saved ~= 1 or ARGV[12] == '' or window < 1 then return {saved, 0} end
-- The safety valve: the batch's last `window` rows that reached Graph, newest first.
redis.call('LPUSH', KEYS[6], ARGV[12] .. '	' .. ARGV[13])
redis.call('LTRIM', KEYS[6], 0, window - 1)
redis.call('EXPIRE', KEYS[6], ARGV[4])
if ARGV[12] == 'ok' or redis.call('LLEN', KEYS[6]) < window then return {saved, 0} end
local users, distinct = {}, 0
for _, entry in ipairs(redis.call('LRANGE', KEYS[6], 0, window - 1)) do
  local tab = string.find(entry, '	', 1, true)
  if string.sub(entry, 1, tab - 1) ~= ARGV[12] then return {saved, 0} end
  local user = string.sub(entry, tab + 1)
  if not users[user] then users[user] = true; distinct = distinct + 1 end
end
if distinct < tonumber(ARGV[15]) then return {saved, 0} end
local reason = 'the last ' .. window .. ' rows that reached Graph, for ' .. distinct ..
  ' users, all failed the same way: ' .. ARGV[16]
if redis.call('HSETNX', KEYS[2], 'paused', reason) == 1 then
  redis.call('HSET', KEYS[2], 'paused_at', ARGV[5])
  return {saved, 1}
end
return {saved, 0}
