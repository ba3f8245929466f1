-- move: requeue dead-lettered jobs into ANOTHER queue's pending list (admin action).
-- KEYS: the source queue's fifteen keys (see _common.lua), then the target
--       queue's fifteen keys in the same order (KEYS[16] .. KEYS[30]).
-- ARGV: reset_attempts (1: fresh attempt budget), then per job: id, the envelope
--       rewritten for the target queue (made by the caller, which keeps the JSON
--       exactly as the task will read it).
-- Returns: per id 'moved', 'missing' (not stored), 'notdead' (no longer dead:
--          left alone) or 'conflict' (the target already has a job with this id).
-- Invariants: the job leaves the source's dead set and enters the target's
--          pending list in the same step, keeping its id and error history; a job
--          that is not dead any more is never touched; when a key of either queue
--          that it touches holds the wrong type, nothing is written.
-- Cluster: the two queues have different hash tags, so on Redis Cluster these
--          keys span two slots and the call is refused (CROSSSLOT); on a single
--          Redis (or Sentinel) it is one atomic script.
local T_PENDING, T_ATTEMPTS, T_JOBS = KEYS[16], KEYS[19], KEYS[22]
local T_ERRORS, T_WAKE = KEYS[23], KEYS[25]
local type_error = check_types(K_DEAD, K_JOBS, K_ERRORS, K_ATTEMPTS, K_REASONS, K_LEASES,
  T_PENDING, T_ATTEMPTS, T_JOBS, T_ERRORS, T_WAKE)
if type_error then return type_error end
local reset = ARGV[1] == '1'
local out, moved = {}, 0
for i = 2, #ARGV, 2 do
  local id, envelope = ARGV[i], ARGV[i + 1]
  local result
  if redis.call('HEXISTS', K_JOBS, id) == 0 then
    result = 'missing'
  elseif redis.call('ZSCORE', K_DEAD, id) == false then
    result = 'notdead'
  elseif redis.call('HEXISTS', T_JOBS, id) == 1 then
    result = 'conflict'
  else
    local errors = redis.call('HGET', K_ERRORS, id)
    local attempts = redis.call('HGET', K_ATTEMPTS, id)
    redis.call('ZREM', K_DEAD, id)
    forget(id)
    redis.call('HSET', T_JOBS, id, envelope)
    if errors then redis.call('HSET', T_ERRORS, id, errors) end
    if attempts and not reset then redis.call('HSET', T_ATTEMPTS, id, attempts) end
    redis.call('RPUSH', T_PENDING, id)
    moved = moved + 1
    result = 'moved'
  end
  out[#out + 1] = result
end
if moved > 0 then
  redis.call('LPUSH', T_WAKE, '1')
  redis.call('LTRIM', T_WAKE, 0, 0)
end
return out
