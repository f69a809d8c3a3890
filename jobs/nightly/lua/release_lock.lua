-- KEYS: the run lock. ARGV: our token. Give the lock back only while it is ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
