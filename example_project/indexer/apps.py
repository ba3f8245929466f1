from django.apps import AppConfig


class IndexerConfig(AppConfig):
    name = "indexer"
    verbose_name = "Source file index"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reliable_queue import signals

        from . import tasks

        # The worker sends job_started in the thread that then runs the task, with
        # the attempt number the engine charged at pickup: remember it there.
        signals.job_started.connect(tasks.remember_job, dispatch_uid="indexer.remember_job")
