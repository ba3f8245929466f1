"""Task functions that must live in an importable module (RQ refuses ``__main__`` functions)."""

import benchcommon as bc


def noop() -> None:
    bc.noop()
