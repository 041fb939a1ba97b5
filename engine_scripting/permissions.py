"""Permissions: what one script may do through the ``world`` API. Least privilege by default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Literal, cast

Scope = Literal["self", "any"]
_SCOPES = ("self", "any")

# what ``write`` and ``emit`` accept: a collection of names, or a mapping
WriteGrant = Iterable[str] | Mapping[str, Iterable[str] | None]
EmitGrant = Iterable[str] | Mapping[str, Scope]


def _names(value: Iterable[str] | str, what: str) -> frozenset[str]:
    if isinstance(value, str):
        raise TypeError(f"{what} must be a collection of names, not a single string")
    try:
        names = frozenset(value)
    except TypeError:
        raise TypeError(f"{what} must be a collection of names, not {value!r}") from None
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{what} must hold non-empty strings, not {name!r}")
    return names


def _scope(value: object, what: str) -> Scope:
    if value not in _SCOPES:
        raise ValueError(f"{what} must be 'self' or 'any', not {value!r}")
    return cast(Scope, value)


def _write(value: WriteGrant) -> Mapping[str, frozenset[str] | None]:
    if not isinstance(value, Mapping):
        return MappingProxyType(dict.fromkeys(_names(value, "write")))
    grants: dict[str, frozenset[str] | None] = {}
    for component, fields in value.items():
        if not isinstance(component, str) or not component:
            raise TypeError(f"write must hold non-empty component names, not {component!r}")
        if fields is None:
            grants[component] = None
            continue
        names = _names(fields, f"write[{component!r}]")
        if not names:
            raise ValueError(f"write[{component!r}] grants no field: leave the component out, "
                             "or give None for every field")
        grants[component] = names
    return MappingProxyType(grants)


def _emit(value: EmitGrant, default: Scope) -> Mapping[str, Scope]:
    if not isinstance(value, Mapping):
        return MappingProxyType(dict.fromkeys(_names(value, "emit"), default))
    grants: dict[str, Scope] = {}
    for name, scope in value.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"emit must hold non-empty event names, not {name!r}")
        grants[name] = _scope(scope, f"emit[{name!r}]")
    return MappingProxyType(grants)


@dataclass(frozen=True, slots=True, init=False)
class Permissions:
    """The grants of one script. ``Permissions()`` grants nothing beyond ``print``.

    Args:
        read: component names the script may ``world.get`` and ``world.has``.
        write: what the script may ``world.set`` (and give to ``world.spawn``): a collection
            of component names (every field of each), or a mapping from component name to the
            field names it may write, or None for every field (``{"Health": {"hp"},
            "Position": None}``).
        scope: shorthand that sets both ``read_scope`` and ``write_scope``.
        spawn: whether the script may ``world.spawn`` entities from a table of components.
        destroy: whether the script may ``world.destroy`` entities (its own under
            ``write_scope="self"``).
        emit: event names the script may ``world.emit``: a collection (a targeted emit to
            another entity follows ``write_scope``), or a mapping from name to the scope of its
            targets (``{"hit": "any", "chat": "self"}``). Broadcasts need only the name.
        read_scope: "self" limits reads to the script's own entity; "any" allows any entity.
        write_scope: the same for ``world.set`` and ``world.destroy``.
        templates: names of the host's spawn templates (``ScriptSystem.register_template``) the
            script may spawn from; they need no other grant.

    Attributes:
        read, templates: frozensets of names.
        write: a read-only mapping, component name -> frozenset of field names, or None for
            every field (a collection given for ``write`` maps each name to None).
        emit: a read-only mapping, event name -> the scope of its targets.
        read_scope, write_scope, spawn, destroy: as given.
        scope: the common scope (a ValueError when ``read_scope`` and ``write_scope`` differ).

    Raises TypeError or ValueError for malformed grants, and ValueError when ``scope`` is given
    together with a differing ``read_scope`` or ``write_scope``.
    """

    read: frozenset[str]
    write: Mapping[str, frozenset[str] | None]
    read_scope: Scope
    write_scope: Scope
    spawn: bool
    destroy: bool
    emit: Mapping[str, Scope]
    templates: frozenset[str]

    def __init__(
        self,
        read: Iterable[str] = frozenset(),
        write: WriteGrant = frozenset(),
        scope: Scope | None = None,
        spawn: bool = False,
        destroy: bool = False,
        emit: EmitGrant = frozenset(),
        *,
        read_scope: Scope | None = None,
        write_scope: Scope | None = None,
        templates: Iterable[str] = frozenset(),
    ) -> None:
        if scope is not None:
            scope = _scope(scope, "scope")
            for name, given in (("read_scope", read_scope), ("write_scope", write_scope)):
                if given is not None and given != scope:
                    raise ValueError(f"scope={scope!r} and {name}={given!r} disagree: give "
                                     "scope alone, or read_scope and write_scope")
        default = scope or "self"
        reads = _scope(default if read_scope is None else read_scope, "read_scope")
        writes = _scope(default if write_scope is None else write_scope, "write_scope")
        for name, flag in (("spawn", spawn), ("destroy", destroy)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, not {flag!r}")
        setter = object.__setattr__
        setter(self, "read", _names(read, "read"))
        setter(self, "write", _write(write))
        setter(self, "read_scope", reads)
        setter(self, "write_scope", writes)
        setter(self, "spawn", spawn)
        setter(self, "destroy", destroy)
        setter(self, "emit", _emit(emit, writes))
        setter(self, "templates", _names(templates, "templates"))

    @property
    def scope(self) -> Scope:
        """The scope of reads and writes when they are the same; ValueError when they differ
        (read ``read_scope`` and ``write_scope`` then)."""
        if self.read_scope != self.write_scope:
            raise ValueError(f"read_scope is {self.read_scope!r} but write_scope is "
                             f"{self.write_scope!r}: read them separately")
        return self.read_scope

    def may_write(self, component: str, field: str) -> bool:
        """Whether the grants allow writing ``field`` of ``component``."""
        fields = self.write.get(component, frozenset())
        return fields is None or field in fields

    def covers(self, other: Permissions) -> bool:
        """True when every grant of ``other`` is also one of these (a spawner may attach a
        script only when its own grants cover the script's)."""
        return self.missing(other) is None

    def missing(self, other: Permissions) -> str | None:
        """The first grant of ``other`` that these lack, written as the ``Permissions``
        argument that would add it (``read={"Secret"}``, ``read_scope="any"``,
        ``write={"Hull": {"max"}}``, ``spawn=True``), or None when these cover ``other``."""
        for grants, name in ((other.read - self.read, "read"),
                             (other.templates - self.templates, "templates")):
            if grants:
                return f"{name}={{{', '.join(map(_quoted, sorted(grants)))}}}"
        for name, mine, theirs in (("read_scope", self.read_scope, other.read_scope),
                                   ("write_scope", self.write_scope, other.write_scope)):
            if not _wider(mine, theirs):
                return f'{name}="any"'
        for component, fields in sorted(other.write.items()):
            if not _fields_cover(self.write, component, fields):
                granted = self.write.get(component, frozenset())
                if fields is None:
                    return (f"write={{{_quoted(component)}: None}}" if component in self.write
                            else f"write={{{_quoted(component)}}}")
                lacking = sorted(fields - (granted or frozenset()))
                return f"write={{{_quoted(component)}: {{{', '.join(map(_quoted, lacking))}}}}}"
        for event, scope in sorted(other.emit.items()):
            if event not in self.emit or not _wider(self.emit[event], scope):
                return (f"emit={{{_quoted(event)}: {_quoted(scope)}}}" if event in self.emit
                        else f"emit={{{_quoted(event)}}}")
        for name, mine_flag, their_flag in (("spawn", self.spawn, other.spawn),
                                            ("destroy", self.destroy, other.destroy)):
            if their_flag and not mine_flag:
                return f"{name}=True"
        return None

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # the read-only mappings cannot be pickled or copied: rebuild from plain values
        rebuild = partial(Permissions, read_scope=self.read_scope, write_scope=self.write_scope,
                          templates=self.templates)
        return rebuild, (self.read, dict(self.write), None, self.spawn, self.destroy,
                         dict(self.emit))

    def __hash__(self) -> int:
        return hash((self.read, frozenset(self.write.items()), self.read_scope,
                     self.write_scope, self.spawn, self.destroy,
                     frozenset(self.emit.items()), self.templates))


def _wider(mine: Scope, theirs: Scope) -> bool:
    return mine == "any" or theirs == "self"


def _fields_cover(mine: Mapping[str, AbstractSet[str] | None], component: str,
                  fields: AbstractSet[str] | None) -> bool:
    if component not in mine:
        return False
    granted = mine[component]
    return granted is None or (fields is not None and fields <= granted)


def _quoted(name: str) -> str:
    """A name as a Python string literal in double quotes (as messages show grants)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
