"""App config: registers the system checks and imports each app's ``tasks`` module."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class ReliableQueueConfig(AppConfig):
    name = "reliable_queue"
    verbose_name = "Reliable queue"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)

        # Workers find tasks by name; importing every app's tasks.py registers them.
        autodiscover_modules("tasks")
