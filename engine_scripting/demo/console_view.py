"""The console tail as the demo shows it, in the window and in the final report."""

from __future__ import annotations

from collections.abc import Sequence

from engine_scripting.ecs import ConsoleMessage

RUN_KEPT = 2   # lines kept from one script's run of consecutive messages


def compress_console(messages: Sequence[ConsoleMessage], lines: int) -> list[tuple[str, str]]:
    """The last ``lines`` console lines as (level, text); a long run of messages from one
    script keeps its last RUN_KEPT lines and says how many it hides, so every script shows."""
    runs: list[list[ConsoleMessage]] = []
    for message in messages:
        if runs and runs[-1][0].script == message.script:
            runs[-1].append(message)
        else:
            runs.append([message])
    shown: list[tuple[str, str]] = []
    for run in runs:
        if len(run) > RUN_KEPT:
            shown.append(("warning", f"[{run[0].script}] ... {len(run) - RUN_KEPT} more lines"))
        for message in run[-RUN_KEPT:]:
            text = message.text.replace("\t", "  ")
            shown.append((message.level, f"[{message.script}] {text}"))
    return shown[-lines:]
