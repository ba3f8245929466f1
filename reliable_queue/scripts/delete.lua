-- delete: remove jobs by an explicit action (API or admin), from any state.
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: the ids.
-- Returns: per id the state it was removed from, or 'missing'.
-- Invariant: the job leaves its state and all its data in one step. A pending job
-- costs an LREM that stops at its first match (explicit, rare action).
local type_error = check_types(K_DEAD, K_INFLIGHT, K_SCHEDULED, K_PENDING, K_JOBS, K_ATTEMPTS, K_ERRORS, K_REASONS, K_LEASES)
if type_error then return type_error end
local out = {}
for i = 1, #ARGV do
  local id = ARGV[i]
  local from = 'missing'
  if redis.call('ZREM', K_DEAD, id) == 1 then
    from = 'dead'
  elseif redis.call('ZREM', K_INFLIGHT, id) == 1 then
    from = 'inflight'
  elseif redis.call('ZREM', K_SCHEDULED, id) == 1 then
    from = 'scheduled'
  elseif redis.call('LREM', K_PENDING, 1, id) == 1 then
    from = 'pending'
  end
  if from ~= 'missing' or redis.call('HEXISTS', K_JOBS, id) == 1 then
    forget(id)
  end
  out[#out + 1] = from
end
return out
