"""Lua's values as the host reads them: bytes as text, and the line a Lua error names.
Shared by the engine and the ECS room."""

from __future__ import annotations

import re

_LINE = re.compile(r"^[^\n]*?:(\d+): ")


def text(value: object) -> str:
    """Lua bytes (or anything) as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def error_line(message: str) -> int | None:
    """The script line named at the start of a Lua error message, if any."""
    match = _LINE.match(message)
    return int(match.group(1)) if match else None
