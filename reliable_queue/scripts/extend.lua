-- extend: the heartbeat; push the lease deadlines of running jobs forward.
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: worker, count, then per job: id, token, visibility_ms, hard_in_ms (for a
--       started job, its hard limit from now as the worker measures it: the rest
--       of its time limit, counted from its start, plus the grace for its ack;
--       -1 for a prefetched job that has not started, whose pickup limit stays).
-- Returns: per job the new deadline (ms), 0 when the lease was lost (or the job
--          is gone), -1 when the job reached its hard limit (not extended).
-- Invariants: only the lease holder extends (fencing); no lease is extended past
-- its hard limit, and a started job's hard limit is its start + time limit +
-- grace (the worker stops the job at its limit; if the worker hangs, the lease
-- runs out there), so a hung job cannot hide behind a healthy heartbeat.
local type_error = check_types(K_INFLIGHT, K_LEASES, K_WORKERS)
if type_error then return type_error end
local worker, count = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local out = {}
for i = 0, count - 1 do
  local base = 3 + i * 4
  local id, token = ARGV[base], ARGV[base + 1]
  local vt, hard_in = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local held = redis.call('HGET', K_LEASES, id)
  local held_token, owner, started, limit, max_attempts = parse_lease(held)
  if held_token ~= token or not limit then
    out[#out + 1] = 0
  else
    if hard_in and hard_in >= 0 and now + hard_in ~= limit then
      -- The job's limit counts from its start, which the pickup could only guess
      -- (a prefetched job waits for the ones before it).
      limit = now + hard_in
      redis.call('HSET', K_LEASES, id, format_lease(held_token, owner, started, limit, max_attempts))
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
