-- KEYS: tat, pause, state, log. ARGV: burst, cap, Tuning.args(), [slot given up].
return reserve_slot(KEYS, ARGV)
