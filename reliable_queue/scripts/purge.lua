-- purge: delete up to `limit` jobs of one state (explicit action; the caller loops).
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: state ('pending', 'scheduled' or 'dead'), limit.
-- Returns: the number of jobs deleted.
-- Invariant: bounded work per call; in-flight jobs are never purged in bulk.
local type_error = check_types(K_PENDING, K_SCHEDULED, K_DEAD, K_JOBS, K_ATTEMPTS, K_ERRORS, K_REASONS, K_LEASES)
if type_error then return type_error end
local state, limit = ARGV[1], tonumber(ARGV[2])
local ids
if state == 'pending' then
  ids = redis.call('LPOP', K_PENDING, limit) or {}
elseif state == 'scheduled' or state == 'dead' then
  local key = (state == 'dead') and K_DEAD or K_SCHEDULED
  ids = redis.call('ZRANGE', key, 0, limit - 1)
  if #ids > 0 then redis.call('ZREM', key, unpack(ids)) end
else
  return redis.error_reply('cannot purge state ' .. tostring(state))
end
for _, id in ipairs(ids) do forget(id) end
return #ids
