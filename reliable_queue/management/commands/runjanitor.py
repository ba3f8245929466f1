"""``manage.py runjanitor``: recover expired leases and promote due jobs."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reliable_queue.exceptions import QueueNotFound
from reliable_queue.janitor import Janitor, PassResult
from reliable_queue.management.commands.runworker import configure_verbosity


class Command(BaseCommand):
    help = ("Recover jobs whose lease expired (requeue, or dead-letter when attempts are spent), "
            "promote due scheduled jobs and expire old dead letters. Safe to run several at once.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queues", nargs="*", help="queue names (all configured queues by default)")
        parser.add_argument("--interval", type=float, default=None,
                            help="seconds between passes (default RELIABLE_QUEUE['JANITOR_INTERVAL'])")
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        configure_verbosity(options["verbosity"])
        if options["interval"] is not None and options["interval"] <= 0:
            raise CommandError("--interval must be a positive number of seconds")
        try:
            janitor = Janitor(queues=options["queues"] or None, interval=options["interval"])
        except QueueNotFound as exc:
            raise CommandError(str(exc)) from None
        if options["once"]:
            self._report(janitor.run_once(), always=True)
        else:
            janitor.run(on_pass=self._report)

    def _report(self, results: dict[str, PassResult], always: bool = False) -> None:
        for name, result in results.items():
            if result or always:
                self.stdout.write(f"{name}: {result}")
