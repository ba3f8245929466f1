"""An unmanaged model that gives the queues an entry in the Django admin.

There is no table: the admin pages read Redis through :class:`reliable_queue.queue.Queue`.
The model exists for two things the admin keys on models: a line in the admin
index, and the custom permissions each admin page and action checks:

* ``reliable_queue.view_queues``   see the dashboard, the job lists and job details
* ``reliable_queue.requeue_jobs``  requeue dead jobs, force-requeue in-flight ones, run scheduled jobs now
* ``reliable_queue.delete_jobs``   delete selected jobs
* ``reliable_queue.purge_jobs``    delete every job of one state in a queue
"""

from __future__ import annotations

from django.db import models


class Dashboard(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_queues", "Can view queues and jobs"),
            ("requeue_jobs", "Can requeue jobs"),
            ("delete_jobs", "Can delete jobs"),
            ("purge_jobs", "Can purge all jobs of a state"),
        ]
        verbose_name = "queue"
        verbose_name_plural = "queues"

    def __str__(self) -> str:  # pragma: no cover - never instantiated
        return "queues"
