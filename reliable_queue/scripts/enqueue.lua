-- enqueue: accept new jobs, each into pending or (delayed) into scheduled.
-- KEYS: the queue's keys (see _common.lua); uses pending, scheduled, jobs, wake.
-- ARGV: count, then per job: id, envelope JSON, delay_ms (<= 0: due now).
-- Returns: the ids that were NOT accepted because a live job already has that id.
-- Invariant: an id is stored (HSETNX) and placed in exactly one state in the same
-- atomic step, and a live job is never overwritten by another with the same id.
-- A call repeated with the same id and envelope (a retry after a lost reply) is
-- accepted without placing the job a second time.
local type_error = check_types(K_JOBS, K_PENDING, K_SCHEDULED, K_WAKE)
if type_error then return type_error end
local count = tonumber(ARGV[1])
local refused, ready = {}, {}
local now = nil
for i = 0, count - 1 do
  local id, envelope, delay = ARGV[2 + i * 3], ARGV[3 + i * 3], tonumber(ARGV[4 + i * 3])
  if redis.call('HSETNX', K_JOBS, id, envelope) == 1 then
    if delay and delay > 0 then
      now = now or now_ms()
      redis.call('ZADD', K_SCHEDULED, now + delay, id)
    else
      ready[#ready + 1] = id
    end
  elseif redis.call('HGET', K_JOBS, id) ~= envelope then
    refused[#refused + 1] = id
  end
end
if #ready > 0 then
  redis.call('RPUSH', K_PENDING, unpack(ready))
  wake()
end
return refused
