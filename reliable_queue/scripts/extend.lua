-- extend: the heartbeat; push the lease deadlines of running jobs forward.
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: worker, count, then per job: id, token, visibility_ms.
-- Returns: per job the new deadline (ms), 0 when the lease was lost (or the job
--          is gone), -1 when the job reached its time limit (not extended).
-- Invariants: only the lease holder extends (fencing); no lease is extended past
-- started + time limit, so a hung job cannot hide behind a healthy heartbeat.
local type_error = check_types(K_INFLIGHT, K_LEASES, K_WORKERS)
if type_error then return type_error end
local worker, count = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local out = {}
for i = 0, count - 1 do
  local id, token, vt = ARGV[3 + i * 3], ARGV[4 + i * 3], tonumber(ARGV[5 + i * 3])
  local held_token, _, _, limit = parse_lease(redis.call('HGET', K_LEASES, id))
  if held_token ~= token then
    out[#out + 1] = 0
  elseif now >= limit then
    out[#out + 1] = -1
  else
    local deadline = math.min(now + vt, limit)
    redis.call('ZADD', K_INFLIGHT, 'XX', deadline, id)
    out[#out + 1] = deadline
  end
end
redis.call('ZADD', K_WORKERS, now, worker)
return out
