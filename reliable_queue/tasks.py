"""``@task`` and the registry of task names.

A task is a module-level function; its name is ``module.qualname``, which is how
a worker in another process finds the same function. Workers import each
installed app's ``tasks`` module at start-up (see ``apps.py``), so a task defined
there needs no further registration.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, ParamSpec, TypeVar

from django.utils import timezone as django_timezone

from .exceptions import TaskNotFound
from .job import limit_problem

P = ParamSpec("P")
R = TypeVar("R")

_registry: dict[str, Task[Any, Any]] = {}

#: The options that are limits of a job (checked by :func:`check_limits`).
LIMITS = ("max_attempts", "visibility_timeout", "time_limit")


@dataclass(frozen=True)
class Call:
    """One set of arguments for :meth:`Task.enqueue_many`."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def check_limits(caller: str, **limits: Any) -> None:
    """Raise ValueError for a bad ``max_attempts``/``visibility_timeout``/``time_limit``
    (None: the queue's default). ``@task`` and ``configure`` both call it, so a bad
    value raises in the caller instead of being enqueued and dead-lettered later."""
    for option, value in limits.items():
        problem = None if value is None else limit_problem(option, value)
        if problem:
            raise ValueError(f"{caller}({option}={value!r}): {problem}; leave it out (or None) for the queue's default")


@dataclass(frozen=True)
class TaskOptions:
    queue: str = "default"
    max_attempts: int | None = None
    visibility_timeout: float | None = None
    time_limit: float | None = None
    on_commit: bool | None = None
    using: str | None = None


class Task(Generic[P, R]):
    """A function that can run now (call it) or later in a worker (``enqueue``)."""

    def __init__(self, func: Callable[P, R], name: str, options: TaskOptions) -> None:
        self.func = func
        self.name = name
        self.options = options
        functools.update_wrapper(self, func)

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.options.queue}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def configure(self, **options: Any) -> Task[P, R]:
        """A copy with other options for one enqueue: ``t.configure(queue="x").enqueue(...)``.

        Options: ``queue``, ``max_attempts``, ``visibility_timeout``, ``time_limit``,
        ``on_commit`` (True: enqueue when the transaction commits; False: now; None:
        after commit when inside an atomic block), ``using`` (database alias).
        """
        unknown = set(options) - set(TaskOptions.__dataclass_fields__)
        if unknown:
            raise TypeError(f"Unknown task option(s) {sorted(unknown)}; valid: {sorted(TaskOptions.__dataclass_fields__)}")
        check_limits("configure", **{k: v for k, v in options.items() if k in LIMITS})
        clone = Task(self.func, self.name, replace(self.options, **options))
        return clone

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Enqueue a run with these arguments; returns the :class:`~reliable_queue.job.Job`."""
        return self._queue().enqueue_task(self, args, kwargs)

    def enqueue_in(self, delay: float | timedelta, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Enqueue a run due ``delay`` seconds (or a timedelta) from now."""
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        return self._queue().enqueue_task(self, args, kwargs, delay=seconds)

    def enqueue_at(self, when: datetime, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Enqueue a run due at ``when``.

        An aware datetime is taken as it is. A naive one is read in the current
        Django time zone, as Django reads naive datetimes (``timezone.make_aware``).
        """
        if when.tzinfo is None:
            when = django_timezone.make_aware(when)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
        return self._queue().enqueue_task(self, args, kwargs, delay=seconds)

    def enqueue_many(self, calls: Iterable[Call | tuple[Any, ...] | list[Any]]) -> list[Any]:
        """Enqueue many runs in few round trips; each item is a :class:`Call` or an args tuple."""
        items = []
        for c in calls:
            if isinstance(c, (str, bytes, bytearray, dict)):
                # tuple("ab") would silently be the arguments ('a', 'b').
                raise TypeError(f"enqueue_many() takes an args tuple or task.call(...) per job, not "
                                f"{type(c).__name__} {c!r:.80}: write [(x,), ...] or [task.call(x), ...].")
            items.append(c if isinstance(c, Call) else Call(tuple(c)))
        return self._queue().enqueue_task_many(self, items)

    @staticmethod
    def call(*args: Any, **kwargs: Any) -> Call:
        """Arguments for :meth:`enqueue_many`: ``t.enqueue_many(t.call(i, x=1) for i in ...)``."""
        return Call(args, kwargs)

    def _queue(self) -> Any:
        from .queue import get_queue

        return get_queue(self.options.queue)


def task(
    func: Callable[P, R] | None = None,
    *,
    queue: str = "default",
    max_attempts: int | None = None,
    visibility_timeout: float | None = None,
    time_limit: float | None = None,
    name: str | None = None,
) -> Any:
    """Make a module-level function a task: ``@task`` or ``@task(queue="emails")``.

    ``max_attempts``, ``visibility_timeout`` and ``time_limit`` default to the
    queue's settings. The queue name is checked at enqueue (settings may not be
    loaded when the module is imported).
    """
    check_limits("@task", max_attempts=max_attempts, visibility_timeout=visibility_timeout, time_limit=time_limit)

    def decorate(f: Callable[P, R]) -> Task[P, R]:
        if not callable(f):
            raise TypeError(f"@task decorates functions, got {f!r}")
        qualname = getattr(f, "__qualname__", "")
        if name is None and ("<locals>" in qualname or "<lambda>" in qualname):
            raise TypeError(
                f"@task needs a module-level function so a worker can import it; {f.__module__}.{qualname} "
                "is defined inside another function. Move it to module level (or pass name=... and register "
                "it at import time in every process)."
            )
        task_name = name or f"{f.__module__}.{qualname}"
        options = TaskOptions(queue=queue, max_attempts=max_attempts,
                              visibility_timeout=visibility_timeout, time_limit=time_limit)
        t: Task[P, R] = Task(f, task_name, options)
        existing = _registry.get(task_name)
        if existing is not None and existing.func is not f and getattr(existing.func, "__code__", None) is not getattr(f, "__code__", None):
            raise ValueError(f"Two different functions are registered as task {task_name!r}; pass name=... to one of them.")
        _registry[task_name] = t
        return t

    if func is not None:
        return decorate(func)
    return decorate


def get_task(name: str) -> Task[Any, Any]:
    """The task registered under ``name``; raises :class:`TaskNotFound`."""
    try:
        return _registry[name]
    except KeyError:
        raise TaskNotFound(
            f"No task named {name!r} is registered in this process. Define it with @reliable_queue.task "
            "in a module that is imported at start-up (an installed app's tasks.py is imported automatically)."
        ) from None


def registered() -> dict[str, Task[Any, Any]]:
    """A copy of the registry: task name -> Task."""
    return dict(_registry)
