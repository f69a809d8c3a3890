-- KEYS: rows, batch, stats, open batches, working. ARGV: seq, JSON, state, "live"|"any",
-- ttl_s, stamp, batch id.
-- Needs the row functions before it.
return set_row(KEYS[1], KEYS[2], KEYS[3], KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4] == 'live',
               ARGV[5], ARGV[6], {KEYS[4], ARGV[7]})
