"""Loads the Lua scripts in ``scripts/`` and registers each one once per client.

Every state transition of a job is one of these scripts, so every transition is
atomic. Each script is ``_common.lua`` (key names and small helpers) followed by
the script's own file; redis-py's ``Script`` runs it by SHA and reloads it when a
restarted Redis has forgotten it.
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script

NAMES = (
    "enqueue", "fetch", "fail", "bury", "release", "extend", "recover",
    "promote", "expire_dead", "requeue", "delete", "purge", "stats", "move",
)


@cache
def source(name: str) -> str:
    """The full Lua source of a script (common prelude included)."""
    folder = resources.files(__package__) / "scripts"
    common = (folder / "_common.lua").read_text(encoding="utf-8")
    return common + "\n" + (folder / f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """The registered scripts for one Redis client, as attributes."""

    def __init__(self, client: redis.Redis) -> None:
        for name in NAMES:
            setattr(self, name, client.register_script(source(name)))

    enqueue: Script
    fetch: Script
    fail: Script
    bury: Script
    release: Script
    extend: Script
    recover: Script
    promote: Script
    expire_dead: Script
    requeue: Script
    delete: Script
    purge: Script
    stats: Script
    move: Script


_lock = threading.Lock()
_registered: dict[int, tuple[Any, Scripts]] = {}


def scripts_for(client: redis.Redis) -> Scripts:
    """The scripts registered on ``client`` (made once per client)."""
    entry = _registered.get(id(client))
    if entry is None or entry[0] is not client:
        with _lock:
            entry = (client, Scripts(client))
            _registered[id(client)] = entry
    return entry[1]
