-- purge: delete up to `limit` jobs of one state (explicit action; the caller loops).
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: state ('pending', 'scheduled' or 'dead'), limit.
-- Returns: {entries removed from the state, jobs deleted}; the caller loops while
--          the first equals limit.
-- Invariants: bounded work per call; in-flight jobs are never purged in bulk. A
-- pending entry whose id is in flight, scheduled or dead is a stray copy (pushed
-- by something else): it is removed from the list, and the live job keeps its
-- envelope, lease and attempts.
local type_error = check_types(K_PENDING, K_INFLIGHT, K_SCHEDULED, K_DEAD, K_JOBS, K_ATTEMPTS, K_ERRORS, K_REASONS, K_LEASES)
if type_error then return type_error end
local state, limit = ARGV[1], tonumber(ARGV[2])
local ids
local deleted = 0
if state == 'pending' then
  ids = redis.call('LPOP', K_PENDING, limit) or {}
  local seen = {}
  for _, id in ipairs(ids) do
    if not (seen[id] or redis.call('ZSCORE', K_INFLIGHT, id) or redis.call('ZSCORE', K_SCHEDULED, id)
        or redis.call('ZSCORE', K_DEAD, id)) then
      forget(id)
      deleted = deleted + 1
    end
    seen[id] = true
  end
elseif state == 'scheduled' or state == 'dead' then
  local key = (state == 'dead') and K_DEAD or K_SCHEDULED
  ids = redis.call('ZRANGE', key, 0, limit - 1)
  if #ids > 0 then redis.call('ZREM', key, unpack(ids)) end
  for _, id in ipairs(ids) do forget(id) end
  deleted = #ids
else
  return redis.error_reply('cannot purge state ' .. tostring(state))
end
return {#ids, deleted}
