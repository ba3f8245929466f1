-- stats: counts and ages of one queue, read at one instant (read-only).
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: (none)
-- Returns: {now_ms, pending, inflight, scheduled, dead, expired_leases,
--           oldest_pending_enqueued_ms (false when absent or unusable),
--           earliest_lease_started_ms or false,
--           counters (flat list), workers (flat name/seen list), janitors (same),
--           done and failed in the last minute, done and failed in the last hour}
--           (the minute and the hour are the current 10-second bucket and the
--           5, or 359, before it: see count_recent in _common.lua)
-- Invariant: bounded cost whatever the queue size (LLEN/ZCARD/ZCOUNT, reads of
-- the head entries, and the at most 360 fields of the rates hash).
local type_error = check_types(K_PENDING, K_JOBS, K_INFLIGHT, K_LEASES, K_SCHEDULED, K_DEAD, K_COUNTERS,
  K_WORKERS, K_JANITORS, K_RATES)
if type_error then return type_error end
local now = now_ms()
local oldest_pending = false
local head = redis.call('LINDEX', K_PENDING, 0)
if head then
  local envelope = redis.call('HGET', K_JOBS, head)
  if envelope then
    local ok, job = pcall(cjson.decode, envelope)
    local at = ok and type(job) == 'table' and tonumber(job.enqueued_at)
    -- Only a time a date can hold (1970 to 9999; NaN fails both tests), written
    -- as digits: an envelope's 1e20 or NaN gives no age rather than an error.
    if at and at >= 0 and at < 253402300800 then
      oldest_pending = string.format('%.0f', math.floor(at * 1000))
    end
  end
end
local earliest_started = false
local first = redis.call('ZRANGE', K_INFLIGHT, 0, 0)
if first[1] then
  local _, _, started = parse_lease(redis.call('HGET', K_LEASES, first[1]))
  if started then earliest_started = tostring(started) end
end
local bucket_now = math.floor(now / RATE_BUCKET_MS)
local done_minute, failed_minute, done_hour, failed_hour = 0, 0, 0, 0
for _, value in ipairs(redis.call('HVALS', K_RATES)) do
  local b, d, f = string.match(value, '^(%d+) (%d+) (%d+)$')
  local age = bucket_now - (tonumber(b) or -RATE_BUCKETS)
  if age >= 0 and age < RATE_BUCKETS then
    done_hour, failed_hour = done_hour + d, failed_hour + f
    if age < 6 then done_minute, failed_minute = done_minute + d, failed_minute + f end
  end
end
return {
  now,
  redis.call('LLEN', K_PENDING),
  redis.call('ZCARD', K_INFLIGHT),
  redis.call('ZCARD', K_SCHEDULED),
  redis.call('ZCARD', K_DEAD),
  redis.call('ZCOUNT', K_INFLIGHT, '-inf', now),
  oldest_pending,
  earliest_started,
  redis.call('HGETALL', K_COUNTERS),
  redis.call('ZRANGE', K_WORKERS, 0, -1, 'WITHSCORES'),
  redis.call('ZRANGE', K_JANITORS, 0, -1, 'WITHSCORES'),
  done_minute, failed_minute, done_hour, failed_hour,
}
