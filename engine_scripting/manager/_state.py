"""Save and load of the scripts' state: the logic behind ``ScriptManager.save_state`` and
``load_state``.

The manager knows the envelope only: the format and its version, the scripts by name, and per
script one *part* for each initializer that keeps state (``SavesState``, an optional protocol
next to ``ContextInitializer``): the initializer makes its part from the script's context,
checks a part from a state, and stages it in the context (the ECS room's ``WorldApi``: the data
of the script's instances). ``load_state`` checks every part of every script before it stages
any, stages all, and puts them in place only once all are staged: bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from engine_scripting._log import get_logger
from engine_scripting.engine import ScriptContext
from engine_scripting.manager._records import ContextInitializer, ManagedScript

_log = get_logger(__name__)

SAVE_FORMAT = "engine-scripting-save"
SAVE_VERSION = 1   # the format this library writes and reads
MAX_ID_MAP = 1_000_000
_MAX_ID = 2**63 - 1
_STATE_KEYS = frozenset({"format", "version", "scripts", "disabled"})


class StagedPart(Protocol):
    """A part staged in a script's context by ``SavesState.stage_part``."""

    def commit(self) -> None:
        """Put the staged part in place (it must not fail: it allocates nothing)."""

    def discard(self) -> None:
        """Drop the staged part (another script's failed); never raises."""


@runtime_checkable
class SavesState(ContextInitializer, Protocol):
    """What a ``ContextInitializer`` also implements when its API keeps state worth saving; the
    manager finds it on its initializers. ``handle`` is what the initializer returned for the
    script (``ManagedScript.installed[initializer]``)."""

    @property
    def state_key(self) -> str:
        """The key of its part in each script's entry of a state (unique per manager)."""

    def save_part(self, handle: Any, context: ScriptContext) -> object:
        """The script's part as JSON data; raises ScriptError (naming the script) on failure."""

    def check_part(self, part: object, id_map: Mapping[int, int]) -> object:
        """Check a part from a state without touching any script; returns what ``stage_part``
        takes. Raises TypeError/ValueError whose message starts with the path inside the part
        (``['5']['hp']: ...``) or with ``': '``."""

    def stage_part(self, handle: Any, context: ScriptContext, checked: Any) -> StagedPart:
        """Stage a checked part in the script's context; raises ScriptError when it cannot."""


@dataclass(frozen=True, slots=True)
class LoadedState:
    """What ``ScriptManager.load_state`` did.

    Attributes:
        scripts: the scripts of the state that got their data, in the state's order.
        skipped: the scripts of the state that are not loaded here (or whose Lua state is dead
            or closed): their data was checked and ignored.
    """

    scripts: tuple[str, ...]
    skipped: tuple[str, ...]


def _keepers(initializers: Iterable[ContextInitializer]) -> dict[str, SavesState]:
    keepers: dict[str, SavesState] = {}
    for initializer in initializers:
        if isinstance(initializer, SavesState):
            key = initializer.state_key
            if not isinstance(key, str) or not key or key in keepers:
                raise ValueError(f"initializers need distinct, non-empty state keys: {key!r}")
            keepers[key] = initializer
    return keepers


def save_scripts(records: Iterable[ManagedScript],
                 initializers: Iterable[ContextInitializer]) -> dict[str, Any]:
    """The state of every enabled script, as JSON data. A disabled script (or one whose Lua
    state is dead) runs no code: it is not saved, and is listed under "disabled". The first
    script that fails raises its error: there is no partial state."""
    keepers = _keepers(initializers)
    scripts: dict[str, Any] = {}
    disabled: list[str] = []
    for record in records:
        if not record.enabled or record.context.dead:   # (a dead one is disabled next tick)
            disabled.append(record.name)
            _log.warning("state.script_not_saved", script=record.name,
                         reason=f"disabled: {record.disabled_reason or 'its Lua state is dead'}")
            continue
        scripts[record.name] = {
            key: keeper.save_part(record.installed[keeper], record.context)
            for key, keeper in keepers.items()}
    return {"format": SAVE_FORMAT, "version": SAVE_VERSION, "scripts": scripts,
            "disabled": disabled}


def load_scripts(records: Mapping[str, ManagedScript],
                 initializers: Iterable[ContextInitializer], state: object,
                 entity_map: object) -> LoadedState:
    """Check ``state`` and ``entity_map`` whole, then hand every loaded script its parts
    (see the module's docstring). Raises TypeError/ValueError for bad input, and a script's
    ScriptError when its part cannot be staged; in every case nothing changed."""
    keepers = _keepers(initializers)
    id_map = id_map_of(entity_map)
    entries = _envelope(state)
    checked: list[tuple[str, SavesState, object]] = []
    for name, parts in entries.items():
        for key, part in parts.items():
            keeper = keepers.get(key) if isinstance(key, str) else None
            where = f"state['scripts'][{_short(name)}][{_short(key)}]"
            if keeper is None:
                raise ValueError(f"{where}: no initializer keeps this part (this manager's "
                                 f"parts: {sorted(keepers)})")
            try:
                result = keeper.check_part(part, id_map)
            except (TypeError, ValueError) as error:
                raise type(error)(f"{where}{error}") from None
            checked.append((name, keeper, result))
    skipped = tuple(name for name in entries if name not in records
                    or records[name].context.closed or records[name].context.dead)
    for name in skipped:
        _log.warning("state.script_skipped", script=name,
                     reason="not loaded" if name not in records else "its Lua state is dead")
    staged: list[StagedPart] = []
    try:
        for name, keeper, result in checked:
            if name not in skipped:
                record = records[name]
                staged.append(keeper.stage_part(record.installed[keeper], record.context,
                                                result))
    except BaseException:
        for part in staged:
            part.discard()
        raise
    for part in staged:
        part.commit()
    return LoadedState(tuple(name for name in entries if name not in skipped), skipped)


def id_map_of(entity_map: object) -> dict[int, int]:
    """``entity_map`` (saved id -> new id; keys may be decimal strings, as JSON gives them) as
    a dict of ints; TypeError/ValueError for anything else."""
    if entity_map is None:
        return {}
    if not isinstance(entity_map, Mapping):
        raise TypeError(f"entity_map must be a mapping of saved ids to new ids, not "
                        f"{type(entity_map).__name__}")
    if len(entity_map) > MAX_ID_MAP:
        raise ValueError(f"entity_map has more than {MAX_ID_MAP} entries")
    ids: dict[int, int] = {}
    for key, value in entity_map.items():
        saved = _id(key, "entity_map key", decimal=True)
        if saved in ids:
            raise ValueError(f"entity_map maps entity {saved} twice ({_short(key)})")
        ids[saved] = _id(value, f"entity_map[{_short(key)}]", decimal=False)
    return ids


def _id(value: object, what: str, *, decimal: bool) -> int:
    if decimal and isinstance(value, str) and value.isascii() and value.isdigit() \
            and value == str(int(value)):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what}: an id is an int{' or its decimal string' if decimal else ''}"
                        f", not {_short(value)}")
    if not 0 <= value <= _MAX_ID:
        raise ValueError(f"{what}: id {value} is outside 0..2**63-1")
    return int(value)


def _envelope(state: object) -> dict[str, Mapping[Any, object]]:
    """The scripts of a state whose envelope is sound: name -> its parts."""
    if not isinstance(state, Mapping):
        raise TypeError(f"a state is a mapping (as save_state returns it), not "
                        f"{type(state).__name__}")
    unknown = [key for key in state if key not in _STATE_KEYS]
    if unknown:
        raise ValueError(f"state has unknown keys: {', '.join(map(_short, unknown[:5]))}")
    if state.get("format") != SAVE_FORMAT:
        raise ValueError(f"state['format'] is {_short(state.get('format'))}, not "
                         f"{SAVE_FORMAT!r}: not a state of save_state")
    version = state.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version != SAVE_VERSION:
        raise ValueError(f"state['version'] is {_short(version)}: this library reads save "
                         f"format version {SAVE_VERSION}")
    disabled = state.get("disabled", [])
    if not isinstance(disabled, list) or not all(isinstance(name, str) for name in disabled):
        raise TypeError("state['disabled'] must be a list of script names")
    scripts = state.get("scripts")
    if not isinstance(scripts, Mapping):
        raise TypeError(f"state['scripts'] must be a mapping of script names to their parts, "
                        f"not {type(scripts).__name__}")
    for name, parts in scripts.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"state['scripts']: a script name is a non-empty str, not "
                            f"{_short(name)}")
        if not isinstance(parts, Mapping):
            raise TypeError(f"state['scripts'][{_short(name)}] must be a mapping of parts, not "
                            f"{type(parts).__name__}")
    return dict(scripts)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
