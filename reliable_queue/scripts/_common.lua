-- Shared helpers, prepended by scripts.py to every script in this folder.
--
-- KEYS (every script gets the same fifteen keys of one queue, in this order, so
-- no key is ever built inside Lua and all of them share the queue's hash tag):
--   1 pending    2 inflight   3 leases     4 attempts   5 scheduled  6 dead
--   7 jobs       8 errors     9 reasons   10 wake      11 seq       12 workers
--  13 janitors  14 counters  15 rates
-- A lease value is "token|worker|started_ms|limit_ms|max_attempts".

local K_PENDING, K_INFLIGHT, K_LEASES, K_ATTEMPTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_SCHEDULED, K_DEAD, K_JOBS, K_ERRORS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local K_REASONS, K_WAKE, K_SEQ, K_WORKERS = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local K_JANITORS, K_COUNTERS, K_RATES = KEYS[13], KEYS[14], KEYS[15]

-- Refuse to run when a key of this queue holds the wrong type (something else
-- wrote it). Redis does not undo a script's earlier writes when a later command
-- fails, so every script that moves a job checks, before its first write, every
-- key it touches. The type goes by position, so a script given two queues' keys
-- (move.lua: KEYS[16..30] in the same order) checks the second queue's too.
local TYPES = {'list', 'zset', 'hash', 'hash', 'zset', 'zset', 'hash', 'hash', 'hash', 'list', 'string',
  'zset', 'zset', 'hash', 'hash'}
local EXPECTED = {}
for i, key in ipairs(KEYS) do EXPECTED[key] = TYPES[(i - 1) % #TYPES + 1] end
local function check_types(...)
  for _, key in ipairs({...}) do
    local t = redis.call('TYPE', key)['ok']
    if t ~= 'none' and t ~= EXPECTED[key] then
      return redis.error_reply('WRONGTYPE reliable_queue: key ' .. key .. ' holds a ' .. t .. ', not a ' ..
        EXPECTED[key] .. '; something other than this queue wrote it. Rename or delete that key ' ..
        '(its contents are not jobs of this queue) and the queue will work again.')
    end
  end
  return nil
end

-- The Redis server's clock in milliseconds: the one clock all deadlines use.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A lease value from its parts; parse_lease reads it back.
local function format_lease(token, worker, started, limit, max_attempts)
  return token .. '|' .. worker .. '|' .. started .. '|' .. limit .. '|' .. max_attempts
end

-- token, worker, started_ms, limit_ms, max_attempts of a lease value (or nils).
local function parse_lease(value)
  if not value then return nil end
  local token, worker, started, limit, max_attempts =
    string.match(value, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  return token, worker, tonumber(started), tonumber(limit), tonumber(max_attempts)
end

-- Append one JSON record to the job's error history (kept as a JSON array).
local function append_error(id, record)
  local old = redis.call('HGET', K_ERRORS, id)
  if old and string.sub(old, -1) == ']' and #old > 2 then
    redis.call('HSET', K_ERRORS, id, string.sub(old, 1, -2) .. ',' .. record .. ']')
  else
    redis.call('HSET', K_ERRORS, id, '[' .. record .. ']')
  end
end

-- Move a job that is no longer in any other state into the dead-letter set.
local function bury(id, reason, now)
  redis.call('ZADD', K_DEAD, now, id)
  redis.call('HSET', K_REASONS, id, reason)
  redis.call('HINCRBY', K_COUNTERS, 'dead', 1)
end

-- Recent throughput, for operators: K_RATES has one field per 10-second bucket of
-- the last hour (RATE_BUCKETS fields, reused in a ring), each "bucket done failed"
-- where bucket is the server time in ms divided by RATE_BUCKET_MS. A field whose
-- bucket is not the current one is stale and starts again from zero.
local RATE_BUCKET_MS, RATE_BUCKETS = 10000, 360
local function count_recent(now, done, failed)
  local bucket = math.floor(now / RATE_BUCKET_MS)
  local field = tostring(bucket % RATE_BUCKETS)
  local b, d, f = string.match(redis.call('HGET', K_RATES, field) or '', '^(%d+) (%d+) (%d+)$')
  if tonumber(b) ~= bucket then d, f = 0, 0 end
  redis.call('HSET', K_RATES, field, string.format('%d %d %d', bucket, tonumber(d) + done, tonumber(f) + failed))
end

-- Leave at most one wake-up token for idle workers blocked on K_WAKE.
local function wake()
  redis.call('LPUSH', K_WAKE, '1')
  redis.call('LTRIM', K_WAKE, 0, 0)
end

-- Remove every trace of a job except its place in a state structure.
local function forget(id)
  redis.call('HDEL', K_JOBS, id)
  redis.call('HDEL', K_ATTEMPTS, id)
  redis.call('HDEL', K_ERRORS, id)
  redis.call('HDEL', K_REASONS, id)
  redis.call('HDEL', K_LEASES, id)
end

