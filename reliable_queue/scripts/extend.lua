-- extend: the heartbeat; push the lease deadlines of running jobs forward.
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: worker, count, then per job: id, token, visibility_ms, remaining_ms
--       (the time the job has left under its time limit, counted by the worker
--       from the job's start; -1 for a prefetched job that has not started).
-- Returns: per job the new deadline (ms), 0 when the lease was lost (or the job
--          is gone), -1 when the job reached its time limit (not extended).
-- Invariants: only the lease holder extends (fencing); no lease is extended past
-- its hard limit, which a started job's remaining_ms can only bring closer, so a
-- hung job cannot hide behind a healthy heartbeat.
local type_error = check_types(K_INFLIGHT, K_LEASES, K_WORKERS)
if type_error then return type_error end
local worker, count = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local out = {}
for i = 0, count - 1 do
  local base = 3 + i * 4
  local id, token = ARGV[base], ARGV[base + 1]
  local vt, remaining = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local held = redis.call('HGET', K_LEASES, id)
  local held_token, owner, started, limit, max_attempts = parse_lease(held)
  if held_token ~= token or not limit then
    out[#out + 1] = 0
  else
    if remaining and remaining >= 0 and now + remaining < limit then
      -- The job started later than its pickup (it was prefetched): its limit
      -- counts from its start, so the hard limit moves closer.
      limit = now + remaining
      redis.call('HSET', K_LEASES, id,
        held_token .. '|' .. owner .. '|' .. started .. '|' .. limit .. '|' .. max_attempts)
    end
    if now >= limit then
      out[#out + 1] = -1
    else
      local deadline = math.min(now + vt, limit)
      redis.call('ZADD', K_INFLIGHT, 'XX', deadline, id)
      out[#out + 1] = deadline
    end
  end
end
redis.call('ZADD', K_WORKERS, now, worker)
return out
