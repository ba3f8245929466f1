-- fail: record a failed attempt, then schedule a retry or dead-letter the job.
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: id, token, error_record (JSON object), retry_delay_ms (< 0: no retry),
--       dead_reason (used when the job is dead-lettered).
-- Returns: {'retry', attempt, due_ms} | {'dead', attempt} | {'lost'} | {'gone'}
-- Invariants: only the holder of the current lease can fail a job (fencing); the
-- job leaves inflight and enters scheduled or dead in the same atomic step; the
-- error history and attempt count travel with it.
local type_error = check_types(K_INFLIGHT, K_LEASES, K_ATTEMPTS, K_SCHEDULED, K_DEAD, K_REASONS, K_ERRORS, K_COUNTERS, K_RATES, K_JOBS)
if type_error then return type_error end
local id, token, record = ARGV[1], ARGV[2], ARGV[3]
local delay, reason = tonumber(ARGV[4]), ARGV[5]
local held = redis.call('HGET', K_LEASES, id)
local held_token, _, _, _, max_attempts = parse_lease(held)
if held_token ~= token then
  if redis.call('HEXISTS', K_JOBS, id) == 1 then return {'lost'} end
  return {'gone'}
end
local now = now_ms()
append_error(id, record)
redis.call('ZREM', K_INFLIGHT, id)
redis.call('HDEL', K_LEASES, id)
redis.call('HINCRBY', K_COUNTERS, 'failed', 1)
count_recent(now, 0, 1)
local attempt = tonumber(redis.call('HGET', K_ATTEMPTS, id) or '0')
if delay < 0 or attempt >= (max_attempts or 1) then
  bury(id, reason, now)
  return {'dead', attempt}
end
redis.call('ZADD', K_SCHEDULED, now + delay, id)
redis.call('HINCRBY', K_COUNTERS, 'retried', 1)
return {'retry', attempt, now + delay}
