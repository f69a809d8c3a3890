-- KEYS: rows, batch, meeting, lease, stats, working, [the limiter's slot keys]. ARGV: seq, JSON,
-- ttl_s, stamp, token, row ref, idem_ttl_s, [its slot arguments].
-- Counts a POST (or an undo's DELETE) as sent *before* it is sent, with the row's attempt,
-- and only while this worker holds the lease: a worker that lost it (paused too long) must
-- not send. With the rate keys, also reserves the call's slot.
-- Returns {code, wait_ms, reserved, slot id}: code 1 go ahead, 0 lease lost, -1 row final
-- already.
-- Needs the row functions and the limiter's reserve_slot before it.
if redis.call('GET', KEYS[4]) ~= ARGV[5] then return {0, '0', -1, ''} end
if set_row(KEYS[1], KEYS[2], KEYS[5], KEYS[6], ARGV[1], ARGV[2], 'running', true, ARGV[3],
           ARGV[4]) ~= 1 then
  return {-1, '0', -1, ''}
end
redis.call('HINCRBY', KEYS[3], 'posts', 1)
redis.call('HSET', KEYS[3], 'state', 'posting', 'posted_by', ARGV[6], 'updated_at', ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[7])
if KEYS[7] then
  local slot = reserve_slot(from(KEYS, 7), from(ARGV, 8))
  return {1, slot[1], slot[2], slot[3]}
end
return {1, '0', -1, ''}
