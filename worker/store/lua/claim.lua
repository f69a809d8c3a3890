-- KEYS: rows, batch, meeting, lease, stats, open batches, working, [the limiter's slot keys].
-- ARGV:
-- seq, JSON (running), ttl_s, stamp, token, lease_ms, get_first ('1' always GET first),
-- done states (' '-separated: the operation's), done id ('' any; else the meeting is done
-- only if its record holds this registration id), batch id, [its slot arguments].
-- One round trip to start work on a row: read the meeting's record; if it is done, say so;
-- else take its lease (or find it held) and mark the row running; with the rate keys,
-- also reserve the slot for the GET that comes next (a GET comes when `get_first` says
-- so, or when a POST may ever have been sent).
-- Returns {code, meeting fields, wait_ms, reserved, slot id[, 1 when the row ended now]}:
-- code 2 meeting done, 1 claimed, 0 lease held by another, -1 the row is final already (or
-- ended now: batch cancelled), -2 the batch is paused. reserved -1: no slot taken.
-- Needs the row functions and the limiter's reserve_slot before it.
local paused = redis.call('HGET', KEYS[2], 'paused')
if paused then
  -- A paused batch sends nothing more; a cancelled one ends its rows as they come.
  if redis.call('HGET', KEYS[2], 'cancelled') ~= '1' then return {-2, {}, '0', -1, ''} end
  local row = cjson.decode(ARGV[2])
  row['status'] = 'failed'
  row['error'] = paused
  local ended = set_row(KEYS[1], KEYS[2], KEYS[5], KEYS[7], ARGV[1], cjson.encode(row), 'failed',
                        true, ARGV[3], ARGV[4], {KEYS[6], ARGV[10]})
  return {-1, {}, '0', -1, '', ended}
end
local meeting = redis.call('HGETALL', KEYS[3])
local state = field(meeting, 'state')
if state and string.find(' ' .. ARGV[8] .. ' ', ' ' .. state .. ' ', 1, true)
   and (ARGV[9] == '' or field(meeting, 'registration_id') == ARGV[9]) then
  return {2, meeting, '0', -1, ''}
end
local holder = redis.call('GET', KEYS[4])
if holder and holder ~= ARGV[5] then return {0, meeting, '0', -1, ''} end
if set_row(KEYS[1], KEYS[2], KEYS[5], KEYS[7], ARGV[1], ARGV[2], 'running', true, ARGV[3],
           ARGV[4]) ~= 1 then
  return {-1, meeting, '0', -1, ''}
end
redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[6])
local posts = tonumber(field(meeting, 'posts') or '0')
if KEYS[8] and (ARGV[7] == '1' or posts > 0) then
  local slot = reserve_slot(from(KEYS, 8), from(ARGV, 11))
  return {1, meeting, slot[1], slot[2], slot[3]}
end
return {1, meeting, '0', -1, ''}
