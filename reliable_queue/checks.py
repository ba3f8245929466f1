"""System checks: ``manage.py check`` reports a broken ``RELIABLE_QUEUE`` with ids.

Ids ``reliable_queue.E001``... come from :func:`reliable_queue.conf.find_problems`;
each message says what is wrong and the hint says what to write instead.
``reliable_queue.W001`` flags a task whose queue is not configured (its enqueue
would raise).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from .conf import SETTING_NAME, build_settings, find_problems
from .tasks import registered


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, SETTING_NAME, None)
    problems: list[CheckMessage] = [Error(p.msg, hint=p.hint, id=p.id, obj=SETTING_NAME) for p in find_problems(raw)]
    if problems:
        return problems
    queues = build_settings(raw).queues
    for name, task in sorted(registered().items()):
        if task.options.queue not in queues:
            problems.append(Warning(
                f"Task {name} uses queue {task.options.queue!r}, which is not configured: enqueueing it will "
                "raise QueueNotFound.",
                hint=f'Add {task.options.queue!r} to {SETTING_NAME}["QUEUES"], or pass queue= to its @task.',
                obj=name, id="reliable_queue.W001",
            ))
    return problems
