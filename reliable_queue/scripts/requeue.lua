-- requeue: put jobs back to pending by an explicit action (API or admin).
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: reset_attempts (1: give the job a fresh attempt budget),
--       only_from ('' for any state, else 'dead', 'inflight' or 'scheduled'),
--       then the ids.
-- Returns: per id the state it came from: 'dead', 'inflight', 'scheduled',
--          'pending' (already waiting: left alone), 'missing', or 'skipped' (it
--          is in another state than only_from: left alone).
-- Invariants: each job leaves its state and enters pending in the same step; a
-- job already pending is never pushed twice; its id, envelope and error history
-- are kept. A forced requeue of an in-flight job voids the running lease. With
-- only_from, a job that moved on since the caller looked is never touched.
local type_error = check_types(K_JOBS, K_DEAD, K_INFLIGHT, K_SCHEDULED, K_PENDING, K_REASONS, K_LEASES, K_ATTEMPTS, K_WAKE)
if type_error then return type_error end
local reset, only = ARGV[1] == '1', ARGV[2]
local out, moved = {}, 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local from
  if redis.call('HEXISTS', K_JOBS, id) == 0 then
    from = 'missing'
  elseif redis.call('ZSCORE', K_DEAD, id) then
    from = 'dead'
  elseif redis.call('ZSCORE', K_INFLIGHT, id) then
    from = 'inflight'
  elseif redis.call('ZSCORE', K_SCHEDULED, id) then
    from = 'scheduled'
  else
    from = 'pending'
  end
  if only ~= '' and from ~= only and from ~= 'missing' then
    from = 'skipped'
  elseif from == 'dead' or from == 'inflight' or from == 'scheduled' then
    if from == 'dead' then
      redis.call('ZREM', K_DEAD, id)
      redis.call('HDEL', K_REASONS, id)
    elseif from == 'inflight' then
      redis.call('ZREM', K_INFLIGHT, id)
      redis.call('HDEL', K_LEASES, id)
    else
      redis.call('ZREM', K_SCHEDULED, id)
    end
    if reset then redis.call('HDEL', K_ATTEMPTS, id) end
    redis.call('RPUSH', K_PENDING, id)
    moved = moved + 1
  end
  out[#out + 1] = from
end
if moved > 0 then wake() end
return out
