"""The RELIABLE_QUEUE setting: validation, system checks, connection by cache alias."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from reliable_queue import conf, get_queue
from reliable_queue.conf import find_problems
from reliable_queue.connection import get_client
from tests.testapp import tasks

GOOD = {"REDIS_URL": "redis://127.0.0.1:6379/0", "QUEUES": {"default": {}}}


@pytest.mark.parametrize("raw, check_id, words", [
    ("redis://x", "reliable_queue.E001", "must be a dict"),
    ({**GOOD, "QUEUE": {}}, "reliable_queue.E002", "unknown key 'QUEUE'"),
    ({**GOOD, "CACHE_ALIAS": "default"}, "reliable_queue.E003", "both REDIS_URL and CACHE_ALIAS"),
    ({"REDIS_URL": "localhost:6379"}, "reliable_queue.E003", "not a Redis URL"),
    ({"CACHE_ALIAS": "nope"}, "reliable_queue.E004", "not a key of settings.CACHES"),
    ({**GOOD, "PREFIX": "a{b}"}, "reliable_queue.E005", "not a valid key prefix"),
    ({**GOOD, "QUEUES": {}}, "reliable_queue.E006", "non-empty dict"),
    ({**GOOD, "QUEUES": {"bad name": {}}}, "reliable_queue.E006", "Queue name 'bad name'"),
    ({**GOOD, "QUEUES": {"q": {"visibilty_timeout": 3}}}, "reliable_queue.E007", "unknown option 'visibilty_timeout'"),
    ({**GOOD, "QUEUES": {"q": {"max_attempts": 0}}}, "reliable_queue.E008", "integer >= 1"),
    ({**GOOD, "DEFAULTS": {"visibility_timeout": -1}}, "reliable_queue.E008", "positive number"),
    ({**GOOD, "JANITOR_INTERVAL": 0}, "reliable_queue.E009", "positive number"),
    ({**GOOD, "SOCKET_TIMEOUT": 4, "BLOCK_TIMEOUT": 8}, "reliable_queue.E010", "at least 1 second shorter"),
])
def test_each_problem_has_an_id_a_message_and_a_hint(raw, check_id, words):
    problems = find_problems(raw)
    assert problems, f"no problem found in {raw!r}"
    matching = [p for p in problems if p.id == check_id]
    assert matching, [p.id for p in problems]
    assert words in matching[0].msg
    assert matching[0].hint


def test_good_settings_have_no_problems():
    assert find_problems(GOOD) == []
    assert find_problems(None) == []
    assert find_problems(django_settings.RELIABLE_QUEUE) == []


def test_manage_check_prints_the_id_and_the_fix(settings):
    settings.RELIABLE_QUEUE = {**GOOD, "SOCKET_TIMEOUT": 4, "BLOCK_TIMEOUT": 8}
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    text = str(caught.value)
    assert "reliable_queue.E010" in text
    assert "HINT: Set BLOCK_TIMEOUT to 2" in text


def test_using_broken_settings_raises_a_clear_error(settings):
    settings.RELIABLE_QUEUE = {**GOOD, "QUEUES": {"q": {"max_attempts": "five"}}}
    with pytest.raises(ImproperlyConfigured, match=r"max_attempts.*reliable_queue.E008"):
        conf.get_settings()


def test_queue_options_inherit_defaults(settings, rq_prefix):
    settings.RELIABLE_QUEUE = {**GOOD, "PREFIX": rq_prefix, "DEFAULTS": {"max_attempts": 7},
                               "QUEUES": {"a": {}, "b": {"max_attempts": 2, "visibility_timeout": 9}}}
    s = conf.get_settings()
    assert (s.queues["a"].max_attempts, s.queues["a"].visibility_timeout) == (7, 30)
    assert (s.queues["b"].max_attempts, s.queues["b"].visibility_timeout) == (2, 9)


def test_a_django_redis_cache_alias_is_reused(settings, rq_prefix):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "queue": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": django_settings.REDIS_URL},
    }
    settings.RELIABLE_QUEUE = {"CACHE_ALIAS": "queue", "PREFIX": rq_prefix, "QUEUES": {"default": {}}}
    from django_redis import get_redis_connection

    assert get_client() is get_redis_connection("queue")
    job = tasks.add.enqueue(1, 2)
    assert get_queue().get(job.id).state == "pending"


def test_a_cache_alias_that_is_not_django_redis_is_refused(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    problems = find_problems({"CACHE_ALIAS": "default"})
    assert [p.id for p in problems] == ["reliable_queue.E004"]
    assert "does not use django-redis" in problems[0].msg


def test_check_warns_about_a_task_whose_queue_is_not_configured(settings, rq_prefix):
    settings.RELIABLE_QUEUE = {**GOOD, "PREFIX": rq_prefix, "QUEUES": {"emails": {}}}
    from django.core.checks import run_checks

    warnings = [m for m in run_checks() if m.id == "reliable_queue.W001"]
    assert any("tests.testapp.tasks.add uses queue 'default'" in m.msg for m in warnings)
    settings.RELIABLE_QUEUE = {**GOOD, "PREFIX": rq_prefix, "QUEUES": {"default": {}, "short": {}}}
    assert [m for m in run_checks() if m.id == "reliable_queue.W001"] == []
