-- requeue: put jobs back to pending by an explicit action (API or admin).
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: reset_attempts (1: give the job a fresh attempt budget), then the ids.
-- Returns: per id the state it came from: 'dead', 'inflight', 'scheduled',
--          'pending' (already waiting: left alone), or 'missing'.
-- Invariants: each job leaves its state and enters pending in the same step; a
-- job already pending is never pushed twice; its id, envelope and error history
-- are kept. A forced requeue of an in-flight job voids the running lease.
local reset = ARGV[1] == '1'
local out, moved = {}, 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local from
  if redis.call('HEXISTS', K_JOBS, id) == 0 then
    from = 'missing'
  elseif redis.call('ZREM', K_DEAD, id) == 1 then
    redis.call('HDEL', K_REASONS, id)
    from = 'dead'
  elseif redis.call('ZREM', K_INFLIGHT, id) == 1 then
    redis.call('HDEL', K_LEASES, id)
    from = 'inflight'
  elseif redis.call('ZREM', K_SCHEDULED, id) == 1 then
    from = 'scheduled'
  else
    from = 'pending'
  end
  if from ~= 'missing' and from ~= 'pending' then
    if reset then redis.call('HDEL', K_ATTEMPTS, id) end
    redis.call('RPUSH', K_PENDING, id)
    moved = moved + 1
  end
  out[#out + 1] = from
end
if moved > 0 then wake() end
return out
