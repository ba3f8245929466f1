"""The ``RELIABLE_QUEUE`` setting: read lazily, validated once, reset on change.

Everything else in the package asks :func:`get_settings` instead of reading
``django.conf.settings`` itself, so a bad setting is reported in one voice (the
system checks in ``checks.py`` call :func:`find_problems`) and a per-job code path
never pays for a settings lookup.

Example::

    RELIABLE_QUEUE = {
        "REDIS_URL": "redis://127.0.0.1:6379/0",   # or "CACHE_ALIAS": "default"
        "PREFIX": "rq",
        "DEFAULTS": {"visibility_timeout": 30, "max_attempts": 5},
        "QUEUES": {"default": {}, "emails": {"visibility_timeout": 120}},
    }
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from .job import limit_problem

SETTING_NAME = "RELIABLE_QUEUE"

#: Queue names become part of Redis keys inside a hash tag, so braces and spaces
#: are not allowed; the length keeps keys short.
QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")

DEFAULT_QUEUE_OPTIONS: dict[str, float | int] = {
    # Seconds a picked-up job stays leased without a heartbeat before the janitor
    # hands it to another worker.
    "visibility_timeout": 30,
    # Deliveries (attempts) before a job is dead-lettered.
    "max_attempts": 5,
    # Seconds a single run may take; the lease is never extended past it.
    "time_limit": 1800,
    # Retry n waits about retry_backoff * 2**(n-1) seconds (with jitter), capped.
    "retry_backoff": 2.0,
    "retry_backoff_max": 600,
    # Seconds a dead-lettered job is kept before the janitor expires it.
    "dead_retention": 14 * 24 * 3600,
}

DEFAULTS: dict[str, Any] = {
    "REDIS_URL": None,
    "CACHE_ALIAS": None,
    "REDIS_OPTIONS": {},
    "PREFIX": "rq",
    # Socket timeout of every Redis connection, seconds.
    "SOCKET_TIMEOUT": 10.0,
    # How long an idle worker blocks in Redis waiting for work; must be shorter
    # than SOCKET_TIMEOUT or every idle wait would end in a timeout error.
    "BLOCK_TIMEOUT": 2.0,
    "JANITOR_INTERVAL": 5.0,
    # Encoded envelopes larger than this are refused at enqueue and dead-lettered
    # if found in Redis.
    "MAX_PAYLOAD_BYTES": 1024 * 1024,
    "DEFAULTS": {},
    "QUEUES": {"default": {}},
}

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class QueueConfig:
    """Options of one queue after defaults are applied."""

    name: str
    visibility_timeout: float
    max_attempts: int
    time_limit: float
    retry_backoff: float
    retry_backoff_max: float
    dead_retention: float


@dataclass(frozen=True)
class Settings:
    redis_url: str | None
    cache_alias: str | None
    redis_options: dict[str, Any]
    prefix: str
    socket_timeout: float
    block_timeout: float
    janitor_interval: float
    max_payload_bytes: int
    queues: dict[str, QueueConfig]

    def queue(self, name: str) -> QueueConfig:
        from .exceptions import QueueNotFound

        try:
            return self.queues[name]
        except KeyError:
            raise QueueNotFound(
                f"Unknown queue {name!r}. Configured queues: {', '.join(sorted(self.queues))}. "
                f'Add it to settings.RELIABLE_QUEUE["QUEUES"].'
            ) from None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the setting, with the check id that reports it."""

    id: str
    msg: str
    hint: str


#: Smallest MAX_PAYLOAD_BYTES: below it even a job without arguments may be refused.
MIN_PAYLOAD_BYTES = 1024


def _is_number(value: Any) -> bool:
    """A finite int or float: NaN passes every ``<= 0`` test and infinity overflows later."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_queue_options(where: str, options: Any, problems: list[Problem]) -> None:
    if not isinstance(options, dict):
        problems.append(
            Problem("reliable_queue.E007", f"{where} must be a dict, got {type(options).__name__}.",
                    f"Write {where} = {{}} or a dict of options such as {{'max_attempts': 5}}.")
        )
        return
    for key, value in options.items():
        if key not in DEFAULT_QUEUE_OPTIONS:
            problems.append(
                Problem("reliable_queue.E007", f"{where} has an unknown option {key!r}.",
                        f"Valid options: {', '.join(DEFAULT_QUEUE_OPTIONS)}.")
            )
            continue
        if key in ("max_attempts", "visibility_timeout", "time_limit"):
            # The same rule as @task, configure() and the worker's decode.
            problem = limit_problem(key, value)
            if problem:
                problems.append(
                    Problem("reliable_queue.E008", f"{where}[{key!r}] {problem}, got {value!r}.",
                            f"Write {where}[{key!r}] = {DEFAULT_QUEUE_OPTIONS[key]}, for example.")
                )
        elif not _is_number(value) or value <= 0:
            problems.append(
                Problem("reliable_queue.E008", f"{where}[{key!r}] must be a positive number of seconds, got {value!r}.",
                        f"Write {where}[{key!r}] = {DEFAULT_QUEUE_OPTIONS[key]}, for example.")
            )
    vt = options.get("visibility_timeout")
    if _is_number(vt) and 0 < vt < 1:
        problems.append(
            Problem("reliable_queue.E008", f"{where}['visibility_timeout'] is {vt!r}: under a second the heartbeat cannot keep up.",
                    "Use a visibility_timeout of at least 1 second (30 is a good default).")
        )


def find_problems(raw: Any) -> list[Problem]:
    """Everything wrong with a raw ``RELIABLE_QUEUE`` value, or ``[]``."""
    problems: list[Problem] = []
    if raw is None:
        return problems
    if not isinstance(raw, dict):
        return [Problem("reliable_queue.E001", f"settings.{SETTING_NAME} must be a dict, got {type(raw).__name__}.",
                        f'Write {SETTING_NAME} = {{"REDIS_URL": "{DEFAULT_REDIS_URL}", "QUEUES": {{"default": {{}}}}}}.')]
    for key in raw:
        if key not in DEFAULTS:
            problems.append(Problem("reliable_queue.E002", f"{SETTING_NAME} has an unknown key {key!r}.",
                                    f"Valid keys: {', '.join(DEFAULTS)}."))
    url, alias = raw.get("REDIS_URL"), raw.get("CACHE_ALIAS")
    if url is not None and alias is not None:
        problems.append(Problem("reliable_queue.E003", f"{SETTING_NAME} sets both REDIS_URL and CACHE_ALIAS.",
                                "Keep one: REDIS_URL for a connection of its own, CACHE_ALIAS to reuse a django-redis cache."))
    if url is not None and (not isinstance(url, str) or not re.match(r"^(redis|rediss|unix)://", url)):
        problems.append(Problem("reliable_queue.E003", f"{SETTING_NAME}['REDIS_URL'] is not a Redis URL: {url!r}.",
                                f"Write a URL such as {DEFAULT_REDIS_URL!r} (schemes: redis://, rediss://, unix://)."))
    if alias is not None:
        from django.conf import settings

        caches = getattr(settings, "CACHES", {})
        if not isinstance(alias, str) or alias not in caches:
            problems.append(Problem("reliable_queue.E004", f"{SETTING_NAME}['CACHE_ALIAS'] = {alias!r} is not a key of settings.CACHES.",
                                    f"Use one of: {', '.join(caches) or '(no caches configured)'}, or set REDIS_URL instead."))
        elif "django_redis" not in str(caches[alias].get("BACKEND", "")):
            problems.append(Problem("reliable_queue.E004", f"The cache {alias!r} does not use django-redis (BACKEND = {caches[alias].get('BACKEND')!r}).",
                                    'Point CACHE_ALIAS at a cache whose BACKEND is "django_redis.cache.RedisCache", or set REDIS_URL.'))
    if not isinstance(raw.get("REDIS_OPTIONS", {}), dict):
        problems.append(Problem("reliable_queue.E002", f"{SETTING_NAME}['REDIS_OPTIONS'] must be a dict of redis-py keyword arguments.",
                                'Write "REDIS_OPTIONS": {"health_check_interval": 30}, for example.'))
    prefix = raw.get("PREFIX", DEFAULTS["PREFIX"])
    if not isinstance(prefix, str) or not PREFIX_RE.match(prefix):
        problems.append(Problem("reliable_queue.E005", f"{SETTING_NAME}['PREFIX'] = {prefix!r} is not a valid key prefix.",
                                "Use 1-64 characters from letters, digits and _ . : - (no braces), e.g. 'rq'."))
    for key in ("SOCKET_TIMEOUT", "BLOCK_TIMEOUT", "JANITOR_INTERVAL"):
        value = raw.get(key, DEFAULTS[key])
        if not _is_number(value) or value <= 0:
            problems.append(Problem("reliable_queue.E009", f"{SETTING_NAME}[{key!r}] must be a positive number, got {value!r}.",
                                    f"Write {SETTING_NAME}[{key!r}] = {DEFAULTS[key]!r}, or leave it out for that default."))
    size = raw.get("MAX_PAYLOAD_BYTES", DEFAULTS["MAX_PAYLOAD_BYTES"])
    if not isinstance(size, int) or isinstance(size, bool) or size < MIN_PAYLOAD_BYTES:
        problems.append(Problem("reliable_queue.E009", f"{SETTING_NAME}['MAX_PAYLOAD_BYTES'] must be an integer of at least "
                                f"{MIN_PAYLOAD_BYTES} (bytes), got {size!r}.",
                                f"Write {SETTING_NAME}['MAX_PAYLOAD_BYTES'] = {DEFAULTS['MAX_PAYLOAD_BYTES']!r} (1 MiB), "
                                "or leave it out for that default."))
    sock, block = raw.get("SOCKET_TIMEOUT", DEFAULTS["SOCKET_TIMEOUT"]), raw.get("BLOCK_TIMEOUT", DEFAULTS["BLOCK_TIMEOUT"])
    if _is_number(sock) and _is_number(block) and sock > 0 and block > 0 and block > sock - 1:
        problems.append(Problem("reliable_queue.E010",
                                f"{SETTING_NAME}['BLOCK_TIMEOUT'] ({block}s) must be at least 1 second shorter than SOCKET_TIMEOUT ({sock}s): "
                                "an idle worker's blocking read would otherwise end in a socket timeout.",
                                f"Set BLOCK_TIMEOUT to {max(min(sock / 2, 5.0), 0.1):g} or raise SOCKET_TIMEOUT to at least {block + 1:g}."))
    _check_queue_options(f"{SETTING_NAME}['DEFAULTS']", raw.get("DEFAULTS", {}), problems)
    queues = raw.get("QUEUES", DEFAULTS["QUEUES"])
    if not isinstance(queues, dict) or not queues:
        problems.append(Problem("reliable_queue.E006", f"{SETTING_NAME}['QUEUES'] must be a non-empty dict of queue name -> options.",
                                'Write "QUEUES": {"default": {}}.'))
    else:
        for name, options in queues.items():
            if not isinstance(name, str) or not QUEUE_NAME_RE.match(name):
                problems.append(Problem("reliable_queue.E006", f"Queue name {name!r} is not valid.",
                                        "Use 1-64 characters from letters, digits and _ . - (no braces or spaces)."))
            _check_queue_options(f"{SETTING_NAME}['QUEUES'][{name!r}]", options, problems)
    return problems


def build_settings(raw: Any) -> Settings:
    """Turn a raw ``RELIABLE_QUEUE`` value into :class:`Settings`, or raise."""
    problems = find_problems(raw)
    if problems:
        first = problems[0]
        raise ImproperlyConfigured(f"{first.msg} {first.hint} ({first.id}; run manage.py check for all problems)")
    raw = {**DEFAULTS, **(raw or {})}
    defaults = {**DEFAULT_QUEUE_OPTIONS, **raw["DEFAULTS"]}
    queues = {
        name: QueueConfig(name=name, **{k: v for k, v in {**defaults, **(opts or {})}.items()})
        for name, opts in raw["QUEUES"].items()
    }
    url = raw["REDIS_URL"]
    if url is None and raw["CACHE_ALIAS"] is None:
        url = DEFAULT_REDIS_URL
    return Settings(
        redis_url=url,
        cache_alias=raw["CACHE_ALIAS"],
        redis_options=dict(raw["REDIS_OPTIONS"]),
        prefix=raw["PREFIX"],
        socket_timeout=float(raw["SOCKET_TIMEOUT"]),
        block_timeout=float(raw["BLOCK_TIMEOUT"]),
        janitor_interval=float(raw["JANITOR_INTERVAL"]),
        max_payload_bytes=int(raw["MAX_PAYLOAD_BYTES"]),
        queues=queues,
    )


_settings: Settings | None = None


def get_settings() -> Settings:
    """The validated settings, built on first use and cached until they change."""
    global _settings
    if _settings is None:
        from django.conf import settings

        _settings = build_settings(getattr(settings, SETTING_NAME, None))
    return _settings


def reset() -> None:
    """Forget cached settings and connections (tests, ``override_settings``)."""
    global _settings
    _settings = None
    from . import connection

    connection.reset()


@receiver(setting_changed)
def _on_setting_changed(setting: str, **kwargs: Any) -> None:
    if setting in (SETTING_NAME, "CACHES"):
        reset()
