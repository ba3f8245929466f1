-- release: hand leased jobs back to the head of pending (clean shutdown).
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: count, then per job: id, token, refund (1: never started, give the
--       attempt charged at pickup back; 0: it ran, the attempt stays counted and
--       its error history says it was interrupted, so a job whose budget such
--       hand-backs spend is dead-lettered with the reason on record).
-- Returns: per job 1 = released, 0 = lease lost, 2 = gone.
-- Invariant: a job leaves inflight and re-enters pending in the same step, only
-- while the caller holds its lease, so nobody waits out a visibility timeout.
local type_error = check_types(K_PENDING, K_INFLIGHT, K_LEASES, K_ATTEMPTS, K_JOBS, K_ERRORS, K_WAKE)
if type_error then return type_error end
local count = tonumber(ARGV[1])
local out, released = {}, 0
for i = 0, count - 1 do
  local id, token, refund = ARGV[2 + i * 3], ARGV[3 + i * 3], ARGV[4 + i * 3]
  local held = redis.call('HGET', K_LEASES, id)
  local held_token, worker = parse_lease(held)
  if held and held_token == token then
    redis.call('LPUSH', K_PENDING, id)
    redis.call('ZREM', K_INFLIGHT, id)
    redis.call('HDEL', K_LEASES, id)
    if refund == '1' then
      if redis.call('HINCRBY', K_ATTEMPTS, id, -1) <= 0 then redis.call('HDEL', K_ATTEMPTS, id) end
    else
      append_error(id, cjson.encode({attempt = tonumber(redis.call('HGET', K_ATTEMPTS, id) or '0'), at = now_ms(),
        type = 'Interrupted', message = 'handed back unfinished when worker ' .. worker .. ' stopped'}))
    end
    released = released + 1
    out[#out + 1] = 1
  elseif redis.call('HEXISTS', K_JOBS, id) == 1 then
    out[#out + 1] = 0
  else
    out[#out + 1] = 2
  end
end
if released > 0 then wake() end
return out
