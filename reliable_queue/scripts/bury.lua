-- bury: dead-letter a leased job at once (undecodable or invalid envelope).
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: id, token, reason, error_record (JSON object, or '' for none).
-- Returns: 1 when dead-lettered, 0 when the caller's lease was lost, 2 when gone.
-- Invariant: the job moves from inflight to dead with its reason in one step, and
-- only while the caller holds the lease.
local type_error = check_types(K_INFLIGHT, K_LEASES, K_DEAD, K_REASONS, K_ERRORS, K_COUNTERS, K_JOBS)
if type_error then return type_error end
local id, token, reason, record = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local held = redis.call('HGET', K_LEASES, id)
if parse_lease(held) ~= token then
  if redis.call('HEXISTS', K_JOBS, id) == 1 then return 0 end
  return 2
end
if record ~= '' then append_error(id, record) end
redis.call('ZREM', K_INFLIGHT, id)
redis.call('HDEL', K_LEASES, id)
bury(id, reason, now_ms())
return 1
