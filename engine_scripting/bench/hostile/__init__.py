"""The catalogue of hostile scripts: one list of attacks for the tests, the soak run and the demo.

Each entry is a Lua file beside this module (``<name>.lua``; its header says what it tries and
what stops it), the grants it runs with, and what the host must observe once the script has run
for ``settle_ticks`` ticks: the class of the error recorded for it, which limit or violation,
and whether it ends up disabled. For every entry the rest of the game runs on: the other
scripts run every tick with unchanged results, and nothing the entry was not granted changes.

The scripts know one component, ``Position`` (fields ``x`` and ``y``), and the thief writes to
entity 1; a host registers a component of that name (the ``Position`` below when it has none).
tests/hardening/test_hostile.py checks every entry's expectation in a real esper world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType

from engine_scripting.engine import ScriptResourceLimits
from engine_scripting.errors import (
    PermissionDenied,
    ResourceLimitExceeded,
    ScriptError,
    ScriptRuntimeError,
    SecurityViolation,
)
from engine_scripting.manager import ScriptStatus
from engine_scripting.permissions import Permissions

# A script failing every tick is disabled after the manager's 10 failing ticks in a row (its
# default max_consecutive_failures); two more for slack.
SETTLE_TICKS = 12


@dataclass(slots=True)
class Position:
    """The component the hostile scripts are granted, for a host that has none of that name."""

    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True, slots=True)
class Expect:
    """What the host observes once a hostile script has settled.

    Attributes:
        error: the class of the script's last recorded error (exactly this class), or None
            when no error is ever recorded.
        disabled: whether the script ends up disabled.
        kind: the error's ``limit_type`` (ResourceLimitExceeded) or ``reason``
            (SecurityViolation); None: not checked.
        time_may_stop_it: the script's work takes about as long as a tight time budget (the
            bombs need 50-200 ms to fill 8-16 MiB), so that the machine, its load and the
            budget decide whether the time limit stops it first: a time limit error is then
            expected too (and a script expected to stay enabled may have been disabled by it).
    """

    error: type[ScriptError] | None
    disabled: bool
    kind: str | None = None
    time_may_stop_it: bool = False


@dataclass(frozen=True, slots=True)
class HostileScript:
    """One attack of the catalogue.

    Attributes:
        name: the script's name, and its file's: ``<name>.lua`` beside this module.
        grants: the permissions it runs with.
        expect: what the host must observe once it has settled (see ``settle_ticks``).
        hangs_unless_stopped: without its limit it would never return or would grow without
            end: tests run it in a child process with a hard timeout.
        ticks_per_mib: for a slow leak, the ticks it takes per MiB of memory limit to fill
            its state (0: its outcome shows at once).
    """

    name: str
    grants: Permissions
    expect: Expect
    hangs_unless_stopped: bool = False
    ticks_per_mib: int = 0

    @property
    def path(self) -> Path:
        """The script's Lua file (shipped inside the package)."""
        return Path(str(files(__name__).joinpath(f"{self.name}.lua")))

    @property
    def source(self) -> str:
        """The script's Lua source."""
        return self.path.read_text(encoding="utf-8")

    def settle_ticks(self, limits: ScriptResourceLimits) -> int:
        """Ticks after which the host observes ``expect``, for a script run with ``limits``."""
        return SETTLE_TICKS + self.ticks_per_mib * math.ceil(limits.max_memory_mb)

    def problems(self, status: ScriptStatus) -> tuple[str, ...]:
        """How the script's settled status differs from ``expect`` (empty: as expected)."""
        expect, error = self.expect, status.last_error
        timed_out = (expect.time_may_stop_it and isinstance(error, ResourceLimitExceeded)
                     and error.limit_type == "time")
        wrong_error = None if timed_out else self._wrong_error(error)
        found = [] if wrong_error is None else [wrong_error]
        if status.enabled == expect.disabled and not (timed_out and not expect.disabled):
            found.append(f"{self.name}: expected it "
                         f"{'disabled' if expect.disabled else 'enabled'}, it is "
                         f"{'enabled' if status.enabled else 'disabled'} "
                         f"({status.disabled_reason})")
        return tuple(found)

    def _wrong_error(self, error: ScriptError | None) -> str | None:
        expect = self.expect
        if not (error is None if expect.error is None else type(error) is expect.error):
            wanted = "no error" if expect.error is None else expect.error.__name__
            return f"{self.name}: expected {wanted}, got {type(error).__name__}: {error}"
        if expect.kind is not None and _kind(error) != expect.kind:
            return f"{self.name}: expected {expect.kind!r}, got {_kind(error)!r}: {error}"
        return None


def _kind(error: ScriptError | None) -> str | None:
    if isinstance(error, ResourceLimitExceeded):
        return error.limit_type
    if isinstance(error, SecurityViolation):
        return error.reason
    return None


_READS = Permissions(read={"Position"})
# read and write on its own Position: scope "self" alone must refuse it another entity's
_OWN_POSITION = Permissions(read={"Position"}, write={"Position"})
_TIME = Expect(ResourceLimitExceeded, disabled=True, kind="time")
_MEMORY = Expect(ResourceLimitExceeded, disabled=True, kind="memory")
_BOMB = Expect(ResourceLimitExceeded, disabled=True, kind="memory", time_may_stop_it=True)
_BUSY = Expect(None, disabled=False, time_may_stop_it=True)
_RECURSION = Expect(ResourceLimitExceeded, disabled=True, kind="recursion")
_ESCAPE = Expect(SecurityViolation, disabled=True, kind="binary_chunk")
_DENIED = Expect(PermissionDenied, disabled=True, kind="permission")
_TOLERATED = Expect(None, disabled=False)

CATALOGUE: tuple[HostileScript, ...] = (
    HostileScript("looper", _READS, _TIME, hangs_unless_stopped=True),
    HostileScript("bomb", _READS, _BOMB, hangs_unless_stopped=True),
    HostileScript("bomb_rep", _READS, _BOMB, hangs_unless_stopped=True),
    HostileScript("recursor", _READS, _RECURSION),
    HostileScript("hog", _READS, _BUSY),
    HostileScript("leaker", _READS, _MEMORY, ticks_per_mib=256),
    HostileScript("thief", _OWN_POSITION, _DENIED),
    HostileScript("spammer", _READS, _DENIED),
    HostileScript("crasher", _READS, Expect(ScriptRuntimeError, disabled=True)),
    HostileScript("escaper", _READS, _ESCAPE),
    HostileScript("escaper_pcall", _READS, _ESCAPE),
    HostileScript("escaper_routes", _READS, _ESCAPE),
    HostileScript("flooder", _READS, _TOLERATED),
    HostileScript("flooder_heavy", _READS, _BUSY),
)

BY_NAME: MappingProxyType[str, HostileScript] = MappingProxyType(
    {entry.name: entry for entry in CATALOGUE})
