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


_TRUSTED_FRAME = re.compile(
    r"^\t(?:\?: in (?:function <\?:\d+>|upvalue '\?'|local '\?'|field '\?'|\?)"
    r"|\[C\]: in (?:upvalue|local|field) '\?'|\[C\]: in \?|\(\.\.\.tail calls\.\.\.\))$")
_STAND_IN_FRAME = re.compile(r"^\t\?: in (function|global|method|field) '([^'?]+)'$")


def split_message(message: str) -> tuple[str, str | None]:
    """A Lua error message's first line, and its traceback with only the script's own frames.

    The sandbox's and the world API's chunks carry no debug information, so their frames read
    ``?: in function <?:N>`` or ``[C]: in upvalue '?'``: they are dropped, as are tail-call
    markers. A frame of a sandbox function standing in for a C one (``?: in function
    'string.find'``) reads as the C function it stands for."""
    first_line, _, traceback = message.partition("\n")
    if not traceback:
        return first_line, None
    kept = []
    for line in traceback.split("\n"):
        if _TRUSTED_FRAME.match(line):
            continue
        stand_in = _STAND_IN_FRAME.match(line)
        kept.append(f"\t[C]: in {stand_in[1]} '{stand_in[2]}'" if stand_in else line)
    frames = [line for line in kept if line.startswith("\t")]
    return first_line, "\n".join(kept) if frames else None
