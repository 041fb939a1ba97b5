"""Permissions: what one script may do through the ``world`` API. Least privilege by default."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Literal

Scope = Literal["self", "any"]
_SCOPES = ("self", "any")


def _names(value: Iterable[str] | str, what: str) -> frozenset[str]:
    if isinstance(value, str):
        raise TypeError(f"{what} must be a collection of names, not a single string")
    names = frozenset(value)
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{what} must hold non-empty strings, not {name!r}")
    return names


@dataclass(frozen=True, slots=True)
class Permissions:
    """The grants of one script. ``Permissions()`` grants nothing beyond ``print``.

    Attributes:
        read: component names the script may ``world.get`` and ``world.has`` (any set of
            names; stored as a frozenset, as are ``write`` and ``emit``).
        write: component names the script may ``world.set``.
        scope: "self" limits every world operation to the script's own entity; "any" allows
            any entity.
        spawn: whether the script may ``world.spawn`` entities.
        destroy: whether the script may ``world.destroy`` entities (its own under "self").
        emit: event names the script may ``world.emit``.

    Raises TypeError or ValueError for malformed grants.
    """

    read: AbstractSet[str] = field(default_factory=frozenset)
    write: AbstractSet[str] = field(default_factory=frozenset)
    scope: Scope = "self"
    spawn: bool = False
    destroy: bool = False
    emit: AbstractSet[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("read", "write", "emit"):
            object.__setattr__(self, name, _names(getattr(self, name), name))
        if self.scope not in _SCOPES:
            raise ValueError(f"scope must be 'self' or 'any', not {self.scope!r}")
        for name in ("spawn", "destroy"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool")

    def covers(self, other: Permissions) -> bool:
        """True when every grant of ``other`` is also one of these (a spawner may attach a
        script only when its own grants cover the script's)."""
        return (other.read <= self.read and other.write <= self.write
                and other.emit <= self.emit and (self.scope == "any" or other.scope == "self")
                and (self.spawn or not other.spawn) and (self.destroy or not other.destroy))
