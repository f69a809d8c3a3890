-- Shared by the scripts that change a row: store its JSON and move the batch's counters
-- with it. `live`: refuse to touch a row that is already final (a stale worker must not
-- undo an outcome). set_row returns -1 no such row, 0 final already, 1 saved.
-- Needs final_states.lua before it.
local FINAL = {}
for _, name in ipairs(FINAL_NAMES) do FINAL[name] = 1 end
-- A failed row's field in the batch's stats: 'fail <http status|-> <Graph code>', the
-- code being what GraphError.describe() put before ': ' (else the message itself).
local function failure_field(row)
  local status = row['http_status']
  if type(status) ~= 'number' then status = '-' end
  local text = row['error'] or ''
  local code = string.match(text, '^(%a[%w_.]*): ') or string.sub(text, 1, 120)
  return 'fail ' .. status .. ' ' .. code
end
-- `open` = {the open batches' key, the batch id}: a batch leaves it when its last row
-- becomes final, and comes back when a final row is put back (`meetreg retry`).
local function track_open(open, batch_key, old_state, state)
  if FINAL[state] and not FINAL[old_state] then
    local n = redis.call('HMGET', batch_key, 'total', unpack(FINAL_NAMES))
    local done = 0
    for i = 2, #n do done = done + tonumber(n[i] or '0') end
    if done >= tonumber(n[1] or '0') then redis.call('ZREM', open[1], open[2]) end
  elseif FINAL[old_state] and not FINAL[state] then
    local t = redis.call('TIME')
    redis.call('ZADD', open[1], t[1] * 1000 + math.floor(t[2] / 1000), open[2])
  end
end
-- `working` = the batch's rows running or retrying, scored by when they became so; a row
-- leaves it with its state, so a finished row keeps no key. Returns now (ms), for the
-- batch's `moved_ms`: Redis' clock, which every reader compares both with.
local function track_working(working, seq, old_state, state, ttl_s)
  local t = redis.call('TIME')
  local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
  if state == 'running' or state == 'retrying' then
    redis.call('ZADD', working, now_ms, seq)
    redis.call('EXPIRE', working, ttl_s)
  elseif old_state == 'running' or old_state == 'retrying' then
    redis.call('ZREM', working, seq)
  end
  return now_ms
end
local function set_row(rows_key, batch_key, stats_key, working, seq, json, state, live, ttl_s,
                       stamp, open)
  local old = redis.call('HGET', rows_key, seq)
  if not old then return -1 end
  local old_row = cjson.decode(old)
  local old_state = old_row['status']
  if live and FINAL[old_state] then return 0 end
  redis.call('HSET', rows_key, seq, json)
  local moved_ms = nil
  if old_state ~= state then
    redis.call('HINCRBY', batch_key, old_state, -1)
    redis.call('HINCRBY', batch_key, state, 1)
    if open then track_open(open, batch_key, old_state, state) end
    moved_ms = track_working(working, seq, old_state, state, ttl_s)
  end
  -- The batch's stats move with its rows (O(1) per row): failed rows by how they failed,
  -- and rows finished per 10 s (the stamp cut after the tens of seconds).
  local stats = false
  if old_state == 'failed' then
    local field = failure_field(old_row)
    if redis.call('HINCRBY', stats_key, field, -1) <= 0 then
      redis.call('HDEL', stats_key, field)
    end
    stats = true
  end
  if state == 'failed' then
    redis.call('HINCRBY', stats_key, failure_field(cjson.decode(json)), 1)
    stats = true
  end
  if FINAL[state] and not FINAL[old_state] then
    redis.call('HINCRBY', stats_key, 'done ' .. string.sub(stamp, 1, 18), 1)
    stats = true
  end
  if stats then redis.call('EXPIRE', stats_key, ttl_s) end
  if moved_ms then
    redis.call('HSET', batch_key, 'updated_at', stamp, 'moved_ms', moved_ms)
  else
    redis.call('HSET', batch_key, 'updated_at', stamp)
  end
  redis.call('EXPIRE', rows_key, ttl_s)
  redis.call('EXPIRE', batch_key, ttl_s)
  return 1
end
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
  return nil
end
