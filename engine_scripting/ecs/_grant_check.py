"""The host's own mistakes in a script's grants: component names (and field names in field
grants) that the ScriptSystem was not given. ``Permissions`` cannot know the components; the
system can, so it checks every script before it first runs it and raises a ScriptError that
names the unknown name and lists the known ones. The script is not blamed: nothing is recorded
against it, and it is not disabled (a misspelt grant is the game's bug, not a violation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from engine_scripting.ecs._schema import ComponentSchema
from engine_scripting.errors import ScriptError
from engine_scripting.manager import ManagedScript
from engine_scripting.permissions import Permissions

MAX_LISTED = 20   # known names an error lists at most


class _Run(Protocol):
    """What GrantCheck reads of the system's ScriptRun: the record it runs."""

    @property
    def record(self) -> ManagedScript:
        """The manager's record."""


def listed(names: Iterable[str]) -> str:
    """``names`` for a message: the first MAX_LISTED, then how many more."""
    shown = list(names)
    if not shown:
        return "none"
    more = len(shown) - MAX_LISTED
    return ", ".join(shown[:MAX_LISTED]) + (f" and {more} more" if more > 0 else "")


def unknown_grant(permissions: Permissions,
                  schemas: tuple[ComponentSchema, ...]) -> str | None:
    """What in ``permissions`` names a component (or a field of one) that ``schemas`` lack, as
    a sentence, or None when every name is known."""
    by_name = {schema.name: schema for schema in schemas}
    known = listed(schema.name for schema in schemas)
    for grant, names in (("read", sorted(permissions.read)),
                         ("write", sorted(permissions.write))):
        for name in names:
            if name not in by_name:
                return (f"Permissions({grant}=...) names component {name!r}, which the "
                        f"ScriptSystem was not given (known components: {known}); fix the "
                        "name, or give the component to ScriptSystem(components=[...])")
    for name, fields in sorted(permissions.write.items()):
        schema = by_name[name]
        for field in sorted(fields or ()):
            if field not in schema.fields:
                return (f"Permissions(write=...) names field {field!r} of {name}, which "
                        f"scripts cannot see ({name}'s visible fields: "
                        f"{listed(schema.fields)}); fix the name, or annotate the field as "
                        "float, int, bool or str")
    return None


class GrantCheck:
    """Checks each script's grants against the system's components before its first run.

    ``Permissions`` found good are remembered (they are hashable and immutable), so a script
    is checked once, and scripts that share grants once for all.
    """

    def __init__(self, schemas: tuple[ComponentSchema, ...]) -> None:
        self._schemas = schemas
        self._good: set[Permissions] = set()

    def check(self, record: ManagedScript) -> None:
        """Raise ScriptError when ``record``'s grants name a component or field the system
        was not given."""
        permissions = record.permissions
        if permissions in self._good:
            return
        problem = unknown_grant(permissions, self._schemas)
        if problem is not None:
            raise ScriptError(f"script {record.name!r}: {problem}", script=record.name)
        self._good.add(permissions)

    def check_new(self, records: Iterable[ManagedScript | None],
                  runs: Mapping[str, _Run]) -> None:
        """``check`` every record the system has no run for yet (it has not run it)."""
        for record in records:
            if record is None:
                continue
            run = runs.get(record.name)
            if run is None or run.record is not record:
                self.check(record)
