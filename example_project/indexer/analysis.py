"""What the indexer measures in a source file: a pure function of the file's bytes."""

from __future__ import annotations

import re

#: A line that starts a definition: ``def``, ``async def`` or ``class``, at any indentation.
DEFINITION_RE = re.compile(rb"^[ \t]*(?:async[ \t]+def|def|class)[ \t]+[A-Za-z_]", re.MULTILINE)


def analyze(path: str) -> dict[str, int]:
    """Size, line, word and definition counts of the file at ``path``.

    Works on bytes, so a file in any encoding (the standard library's tests hold a
    few deliberately odd ones) gives a result. Raises ``OSError`` (e.g.
    ``FileNotFoundError``) when the file cannot be read.
    """
    with open(path, "rb") as f:
        data = f.read()
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    return {
        "size": len(data),
        "lines": lines,
        "words": len(data.split()),
        "definitions": len(DEFINITION_RE.findall(data)),
    }
