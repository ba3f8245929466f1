-- fetch: acknowledge finished jobs and lease the next ones, in one round trip.
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: worker, ack_count, then per ack: id, token;
--       then fetch_count, default_visibility_ms, default_limit_ms,
--       default_max_attempts, max_envelope_bytes, max_limit_ms (a job's own
--       visibility timeout or time limit that is not a number in (0, max_limit_ms]
--       -- NaN, infinite, absurd -- is replaced by the queue's default),
--       grace_ms (how long a lease may outlive its time limit, for the ack),
--       ahead_ms (the time limits plus grace of the jobs the caller will run
--       before these, leased from other queues in the same round).
-- Returns: {ack_results, leased, buried}
--   ack_results: per ack 1 = done, 0 = lease lost (someone else holds the job),
--                2 = job already gone (acked before, or deleted)
--   leased: per job {id, token, envelope, attempt, visibility_ms, limit_ms}: the
--           lease length the heartbeat renews and the time limit from now (each
--           the job's own, or the queue's default)
--   buried: per malformed entry {id, reason} (dead-lettered here, never leased)
-- Invariants: an ack removes the job only while the caller's token still holds
-- the lease (fencing); a pickup moves an id from pending to inflight, charges
-- one attempt and records a lease in the same atomic step; anything that cannot
-- be leased (no envelope, not JSON, too large) goes to dead with a reason; a
-- stray copy of an id already in flight, scheduled or dead is dropped; no
-- envelope can make a lease that never ends.
local type_error = check_types(K_PENDING, K_INFLIGHT, K_LEASES, K_ATTEMPTS, K_SCHEDULED, K_JOBS, K_ERRORS, K_DEAD, K_REASONS, K_SEQ, K_COUNTERS, K_RATES, K_WORKERS, K_WAKE)
if type_error then return type_error end
local worker = ARGV[1]
local ack_count = tonumber(ARGV[2])
local pos = 3
local acks = {}
local done = {}
for _ = 1, ack_count do
  local id, token = ARGV[pos], ARGV[pos + 1]
  pos = pos + 2
  local held = redis.call('HGET', K_LEASES, id)
  if held and parse_lease(held) == token then
    -- The lease goes at once (a repeated ack in this call then finds none); the
    -- rest of the job's data goes below, in one command per structure.
    redis.call('HDEL', K_LEASES, id)
    done[#done + 1] = id
    acks[#acks + 1] = 1
  elseif redis.call('HEXISTS', K_JOBS, id) == 1 then
    acks[#acks + 1] = 0
  else
    acks[#acks + 1] = 2
  end
end
for first = 1, #done, 500 do
  local chunk = {unpack(done, first, math.min(first + 499, #done))}
  redis.call('ZREM', K_INFLIGHT, unpack(chunk))
  redis.call('HDEL', K_JOBS, unpack(chunk))
  redis.call('HDEL', K_ATTEMPTS, unpack(chunk))
  redis.call('HDEL', K_ERRORS, unpack(chunk))
end
if #done > 0 then
  redis.call('HINCRBY', K_COUNTERS, 'done', #done)
  count_recent(now_ms(), #done, 0)
end

local fetch_count = tonumber(ARGV[pos])
local default_vt, default_limit = tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2])
local default_max, max_bytes = tonumber(ARGV[pos + 3]), tonumber(ARGV[pos + 4])
local max_limit = tonumber(ARGV[pos + 5])
-- The slot runs its batch one job after another, each stopped at its own time
-- limit, so a job starts at most the sum of the limits before it after now: its
-- hard limit is that sum plus its own (each with the grace). When the job starts
-- the worker sets it to start + limit + grace (extend.lua) and enforces the limit.
local grace = tonumber(ARGV[pos + 6])
local ahead = tonumber(ARGV[pos + 7]) or 0

-- A job's own limit in ms, or the queue's default when it has none or an unusable
-- one (NaN fails every comparison); the worker's decode dead-letters the latter.
local function limit_ms(seconds, default)
  local value = tonumber(seconds)
  if value and value > 0 and value * 1000 <= max_limit then return math.floor(value * 1000) end
  return default
end
local leased, buried = {}, {}
if fetch_count > 0 then
  local ids = redis.call('LPOP', K_PENDING, fetch_count)
  if ids then
    local now = now_ms()
    for _, id in ipairs(ids) do
      local size = redis.call('HSTRLEN', K_JOBS, id)
      if redis.call('ZSCORE', K_INFLIGHT, id) or redis.call('ZSCORE', K_SCHEDULED, id)
          or redis.call('ZSCORE', K_DEAD, id) then
        -- A stray second copy of an id that is already leased, scheduled or dead
        -- (pushed by something else): leasing it would void the live lease and run
        -- the job twice. Drop the copy; the job stays in its one state.
        redis.log(redis.LOG_WARNING, 'reliable_queue: dropped a stray pending copy of job ' .. id)
      elseif size == 0 then
        if #id > 0 and #id <= 64 and not string.find(id, '[^%w_%-%.]') then
          bury(id, 'envelope missing: no job is stored under this id', now)
          buried[#buried + 1] = {id, 'envelope missing'}
        else
          -- Not one of our ids (something else pushed it): keep the raw entry
          -- under a fresh id so it can be inspected, and dead-letter that.
          local new_id = 'bad-' .. redis.call('INCR', K_SEQ)
          redis.call('HSET', K_JOBS, new_id, id)
          local reason = 'malformed entry in the pending list (not a job id, ' .. #id .. ' bytes)'
          bury(new_id, reason, now)
          buried[#buried + 1] = {new_id, reason}
        end
      elseif size > max_bytes then
        local reason = 'envelope too large: ' .. size .. ' bytes (limit ' .. max_bytes .. ')'
        bury(id, reason, now)
        buried[#buried + 1] = {id, reason}
      else
        local envelope = redis.call('HGET', K_JOBS, id)
        local ok, job = pcall(cjson.decode, envelope)
        if not ok or type(job) ~= 'table' then
          local reason = 'envelope is not a JSON object'
          if not ok then reason = reason .. ': ' .. tostring(job) end
          bury(id, reason, now)
          buried[#buried + 1] = {id, reason}
        else
          local vt = limit_ms(job.visibility_timeout, default_vt)
          local limit = limit_ms(job.time_limit, default_limit)
          local max_attempts = tonumber(job.max_attempts)
          max_attempts = (max_attempts and max_attempts >= 1) and math.floor(max_attempts) or default_max
          vt = math.max(vt, 100)  -- a lease shorter than 0.1 s could not be kept alive
          local attempt = redis.call('HINCRBY', K_ATTEMPTS, id, 1)
          if attempt > max_attempts then
            -- Its budget was spent before (e.g. requeued without a reset): never loop.
            local reason = 'attempts exhausted: ' .. (attempt - 1) .. ' deliveries of at most ' .. max_attempts
            redis.call('HINCRBY', K_ATTEMPTS, id, -1)
            bury(id, reason, now)
            buried[#buried + 1] = {id, reason}
          else
            local token = tostring(redis.call('INCR', K_SEQ))
            ahead = ahead + limit + grace
            local hard = now + ahead
            local deadline = math.min(now + vt, hard)
            redis.call('ZADD', K_INFLIGHT, deadline, id)
            redis.call('HSET', K_LEASES, id, format_lease(token, worker, now, hard, max_attempts))
            leased[#leased + 1] = {id, token, envelope, attempt, vt, limit}
          end
        end
      end
    end
    if #ids == fetch_count and redis.call('LLEN', K_PENDING) > 0 then
      wake()  -- more work left: let another idle worker start too
    end
  end
  redis.call('ZADD', K_WORKERS, now_ms(), worker)
end
return {acks, leased, buried}
