-- recover: the janitor's pass over expired leases.
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: janitor name, limit (most jobs handled in this call), default_max_attempts.
-- Returns: per job {id, action, attempt, reason} with action 'requeued' or 'dead'.
-- Invariants: only ids still in inflight whose deadline has passed by the server's
-- clock are touched, inside this one script, so any number of janitors requeue a
-- job once per expiry; the attempt charged at pickup stays, so a job that keeps
-- killing its worker ends in dead ("worker lost") instead of looping forever.
local type_error = check_types(K_PENDING, K_INFLIGHT, K_LEASES, K_ATTEMPTS, K_JOBS, K_ERRORS, K_DEAD, K_REASONS, K_COUNTERS, K_WAKE, K_JANITORS, K_WORKERS)
if type_error then return type_error end
local name, limit, default_max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', K_INFLIGHT, '-inf', now, 'LIMIT', 0, limit)
local out, requeued = {}, 0
for _, id in ipairs(ids) do
  local _, worker, _, hard, max_attempts = parse_lease(redis.call('HGET', K_LEASES, id))
  redis.call('ZREM', K_INFLIGHT, id)
  redis.call('HDEL', K_LEASES, id)
  local attempt = tonumber(redis.call('HGET', K_ATTEMPTS, id) or '0')
  if redis.call('HEXISTS', K_JOBS, id) == 0 then
    bury(id, 'envelope missing: no job is stored under this id', now)
    out[#out + 1] = {id, 'dead', attempt, 'envelope missing'}
  else
    local kind, reason
    if hard and now >= hard then
      kind = 'TimeLimitExceeded'
      reason = 'timed out: still running when its time limit ran out (the lease cannot be extended past it)'
    else
      kind = 'WorkerLost'
      reason = 'worker lost: lease expired without an ack'
      if worker and worker ~= '' then reason = reason .. ' (worker ' .. worker .. ')' end
    end
    append_error(id, cjson.encode({attempt = attempt, at = now, type = kind, message = reason}))
    if attempt >= (max_attempts or default_max) then
      bury(id, reason, now)
      out[#out + 1] = {id, 'dead', attempt, reason}
    else
      redis.call('LPUSH', K_PENDING, id)
      requeued = requeued + 1
      out[#out + 1] = {id, 'requeued', attempt, reason}
    end
  end
end
if requeued > 0 then
  redis.call('HINCRBY', K_COUNTERS, 'recovered', requeued)
  wake()
end
redis.call('ZADD', K_JANITORS, now, name)
-- Forget workers and janitors not seen for a day, so the registries stay small.
redis.call('ZREMRANGEBYSCORE', K_WORKERS, '-inf', now - 86400000)
redis.call('ZREMRANGEBYSCORE', K_JANITORS, '-inf', now - 86400000)
return out
