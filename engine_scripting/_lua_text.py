"""Lua's values as the host reads them: bytes as text, and the line a Lua error names.
Shared by the engine and the ECS room."""

from __future__ import annotations

import re

_LINE = re.compile(r"^[^\n]*?:(\d+): ")


def text(value: object) -> str:
    """Lua bytes (or anything) as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def printable(message: str) -> str:
    """``message`` with its control characters (newlines, carriage returns, terminal escapes;
    not tabs) written as ``\\xNN``: script-made text in a one-line message can neither start a
    line of its own nor drive the terminal of whoever reads the log or the console."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found[0]):02x}", message)


def error_line(message: str) -> int | None:
    """The script line named at the start of a Lua error message, if any."""
    match = _LINE.match(message)
    return int(match.group(1)) if match else None


_TRUSTED_FRAME = re.compile(
    r"^\t(?:\?: in (?:function <\?:\d+>|upvalue '\?'|local '\?'|field '\?'|\?)"
    r"|\[C\]: in (?:upvalue|local|field) '\?'|\[C\]: in \?|\(\.\.\.tail calls\.\.\.\))$")
_STAND_IN_FRAME = re.compile(r"^\t\?: in (function|global|method|field) '([^'?]+)'$")
# a C function's frame with its name ("[C]: in function 'string.gsub'")
_NAMED_C_FRAME = re.compile(r"^\t\[C\]: in \w+ '(?:[\w.]*\.)?([^'.?]+)'$")
# a script's frame named by the trusted code that called it, which has no names to give
_UNNAMED_SCRIPT_FRAME = re.compile(r"^(\t[^\t]*:\d+:) in (?:upvalue|local|field|method) '\?'$")


def split_message(message: str) -> tuple[str, str | None]:
    """A Lua error message's first line, and its traceback with only the script's own frames.

    The sandbox's and the world API's chunks carry no debug information, so their frames read
    ``?: in function <?:N>`` or ``[C]: in upvalue '?'``: they are dropped, as are tail-call
    markers. A frame of a sandbox function standing in for a C one (``?: in function
    'string.find'``) reads as the C function it stands for, and is dropped right after the C
    function's own frame (the stand-in called it). A script function that trusted code called
    (a ``string.gsub`` replacement, a comparator) has no name to show: ``in function``."""
    first_line, _, traceback = message.lstrip("\n").partition("\n")
    first_line = printable(first_line)
    if not traceback:
        return first_line, None
    kept: list[str] = []
    for line in traceback.split("\n"):
        if _TRUSTED_FRAME.match(line):
            continue
        stand_in = _STAND_IN_FRAME.match(line)
        if stand_in:
            called = _NAMED_C_FRAME.match(kept[-1]) if kept else None
            if called and called[1] == stand_in[2].rpartition(".")[2]:
                continue
            line = f"\t[C]: in {stand_in[1]} '{stand_in[2]}'"
        unnamed = _UNNAMED_SCRIPT_FRAME.match(line)
        kept.append(f"{unnamed[1]} in function" if unnamed else line)
    frames = [line for line in kept if line.startswith("\t")]
    return first_line, "\n".join(kept) if frames else None
