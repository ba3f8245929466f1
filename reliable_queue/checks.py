"""System checks: ``manage.py check`` reports a broken ``RELIABLE_QUEUE`` with ids.

Ids ``reliable_queue.E001``... come from :func:`reliable_queue.conf.find_problems`;
each message says what is wrong and the hint says what to write instead.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from .conf import SETTING_NAME, find_problems


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    raw = getattr(settings, SETTING_NAME, None)
    return [Error(p.msg, hint=p.hint, id=p.id, obj=SETTING_NAME) for p in find_problems(raw)]
