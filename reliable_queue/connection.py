"""The one place that turns settings into a Redis client.

A URL gets a client of its own; a ``CACHE_ALIAS`` reuses the connection pool of a
django-redis cache, so a project keeps one set of Redis connection settings.
Responses are bytes (``decode_responses=False``): job ids and envelopes found in
Redis may be anything, and decoding is done where a bad byte can be contained.
"""

from __future__ import annotations

import logging
import threading

import redis

from .conf import get_settings

logger = logging.getLogger("reliable_queue.connection")

_lock = threading.Lock()
_client: redis.Redis | None = None
_owned = False  # True when we built the pool (not a django-redis cache's)


def get_client() -> redis.Redis:
    """The process-wide Redis client (thread-safe; its pool hands out connections)."""
    global _client
    client = _client
    if client is not None:
        return client
    with _lock:
        if _client is None:
            _client = _build_client()
        return _client


def _build_client() -> redis.Redis:
    global _owned
    settings = get_settings()
    if settings.cache_alias is not None:
        from django_redis import get_redis_connection

        _owned = False
        return get_redis_connection(settings.cache_alias)
    _owned = True
    options = {
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": min(settings.socket_timeout, 5.0),
        "socket_keepalive": True,
        "health_check_interval": 30,
        **settings.redis_options,
        "decode_responses": False,
    }
    return redis.Redis.from_url(settings.redis_url, **options)


def socket_timeout_of(client: redis.Redis) -> float | None:
    """The socket timeout the client's connections use, if any."""
    kwargs = getattr(client.connection_pool, "connection_kwargs", {})
    value = kwargs.get("socket_timeout")
    return float(value) if value else None


def reset() -> None:
    """Drop the cached client; the next call builds one from current settings."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None and _owned:
        try:
            client.connection_pool.disconnect()
        except Exception:  # pragma: no cover - closing a dead pool
            logger.debug("error while closing the Redis pool", exc_info=True)
