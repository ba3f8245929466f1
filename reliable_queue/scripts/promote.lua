-- promote: move scheduled jobs whose time has come to the tail of pending.
-- KEYS: the queue's keys (see _common.lua).
-- ARGV: limit (most jobs moved in this call).
-- Returns: the ids moved.
-- Invariant: an id leaves scheduled and enters pending in the same step; due
-- times are compared with the server's clock.
local type_error = check_types(K_SCHEDULED, K_PENDING, K_WAKE)
if type_error then return type_error end
local limit = tonumber(ARGV[1])
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', K_SCHEDULED, '-inf', now, 'LIMIT', 0, limit)
if #ids > 0 then
  redis.call('ZREM', K_SCHEDULED, unpack(ids))
  redis.call('RPUSH', K_PENDING, unpack(ids))
  wake()
end
return ids
