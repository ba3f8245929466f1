-- expire_dead: delete dead-lettered jobs older than the retention.
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: retention_ms, limit (most jobs expired in this call).
-- Returns: the number of jobs expired.
-- Invariant: the only path that removes a job without an ack or an explicit
-- delete, and only for jobs dead-lettered (with their reason) before now - retention.
local type_error = check_types(K_DEAD, K_JOBS, K_ATTEMPTS, K_ERRORS, K_REASONS, K_LEASES)
if type_error then return type_error end
local retention, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', K_DEAD, '-inf', now_ms() - retention, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  redis.call('ZREM', K_DEAD, id)
  forget(id)
end
return #ids
