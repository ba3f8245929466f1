"""``manage.py runworker [queue ...]``: run a worker until stopped."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reliable_queue.exceptions import QueueNotFound
from reliable_queue.worker import Worker


def configure_verbosity(verbosity: int) -> None:
    """-v 0: errors only; 1: start/stop and problems; 2: also a line per job; 3: debug."""
    level = {0: logging.ERROR, 1: logging.INFO, 2: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger("reliable_queue")
    root.setLevel(level)
    logging.getLogger("reliable_queue.jobs").setLevel(logging.INFO if verbosity >= 2 else logging.WARNING)
    if not root.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


class Command(BaseCommand):
    help = "Consume the named queues (all configured queues by default), in the order given."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queues", nargs="*", help="queue names, highest priority first")
        parser.add_argument("--concurrency", "-c", type=int, default=1, help="jobs run at once (threads)")
        parser.add_argument("--prefetch", type=int, default=1,
                            help="jobs leased per slot per round trip (unstarted ones are handed back at stop)")
        parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
        parser.add_argument("--max-jobs", type=int, default=None, help="exit after this many jobs")
        parser.add_argument("--shutdown-timeout", type=float, default=30.0,
                            help="seconds running jobs get to finish after the first SIGTERM/SIGINT")
        parser.add_argument("--name", default=None, help="worker name (default host.pid.random)")

    def handle(self, *args: Any, **options: Any) -> None:
        configure_verbosity(options["verbosity"])
        if options["concurrency"] < 1 or options["prefetch"] < 1:
            raise CommandError("--concurrency and --prefetch must be at least 1")
        if options["max_jobs"] is not None and options["max_jobs"] < 1:
            raise CommandError("--max-jobs must be at least 1")
        try:
            worker = Worker(
                queues=options["queues"] or None,
                concurrency=options["concurrency"],
                prefetch=options["prefetch"],
                burst=options["burst"],
                max_jobs=options["max_jobs"],
                shutdown_timeout=options["shutdown_timeout"],
                name=options["name"],
            )
        except QueueNotFound as exc:
            raise CommandError(str(exc)) from None
        worker.run()
