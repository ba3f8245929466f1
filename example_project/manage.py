#!/usr/bin/env python
"""Django's command-line utility for the example project.

Run from this directory (or give its path): ``python example_project/manage.py runworker``.
The Redis URL comes from ``$REDIS_URL`` and the key prefix from ``$RQDEMO_PREFIX``
(see demosite/settings.py).
"""

import os
import sys
from pathlib import Path


def main() -> None:
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demosite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
