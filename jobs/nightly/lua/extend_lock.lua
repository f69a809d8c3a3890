-- KEYS: the run lock. ARGV: our token, ttl_ms. Extend the lock only while it is ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
