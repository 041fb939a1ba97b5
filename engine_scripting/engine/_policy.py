"""The sandbox's policy: every name a sandboxed script's global environment holds, as data.

sandbox.lua builds each untrusted context's environment from this and from nothing else: the
engine passes it at set-up as one Lua sequence (``LUA_POLICY``). docs/scripting.md's table of
what scripts get, tests/engine/test_escapes.py and tests/engine/test_policy.py are checked
against it.

Each table of the environment (the globals, or one library) offers two kinds of names:

- *plain*: the value is Lua 5.4's own (a C function or a constant, e.g. ``string.byte``);
- *guarded*: the value is the sandbox's own version of Lua's function, a stand-in that keeps
  the sandbox's limits (``pcall``, ``load``, the pattern matchers...). sandbox.lua or one of
  the modules of ``engine.SANDBOX_MODULES`` provides it; set-up fails when a guarded name has no
  stand-in, or a stand-in has no guarded name.

Besides ``GLOBALS``, the global table holds each library of ``LIBRARIES`` under its name,
``_G`` (the table itself) and the globals host extensions add (the ECS ``world``). Nothing else:
no ``os``, ``io``, ``debug``, ``package``, ``dofile``, ``loadfile``, ``string.dump``
(``require`` loads only the modules the host registered).
Trusted engines ignore the policy (their scripts get the whole standard library).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


@dataclass(frozen=True)
class Allowance:
    """The names one table of the script environment offers: Lua's own, and guarded ones."""

    plain: frozenset[str]
    guarded: frozenset[str] = frozenset()

    @property
    def names(self) -> frozenset[str]:
        """Every name the table holds."""
        return self.plain | self.guarded


SELF = "_G"
"""The global that holds the script's own global table."""

GLOBALS = Allowance(
    plain=_names("_VERSION assert error getmetatable ipairs next pairs rawequal rawget rawlen"
                 " select setmetatable tonumber tostring type"),
    guarded=_names("collectgarbage load pcall print rawset require xpcall"),
)
"""The base globals (the libraries, ``_G`` and extensions aside)."""

LIBRARIES: Mapping[str, Allowance] = MappingProxyType({
    "string": Allowance(
        plain=_names("byte char format len lower pack packsize reverse sub unpack upper"),
        guarded=_names("find gmatch gsub match rep"),
    ),
    "table": Allowance(
        plain=_names("pack"),
        guarded=_names("concat insert move remove sort unpack"),
    ),
    "math": Allowance(
        plain=_names("abs acos asin atan ceil cos deg exp floor fmod huge log max maxinteger"
                     " min mininteger modf pi rad random sin sqrt tan tointeger type ult"),
        guarded=_names("randomseed"),
    ),
    "utf8": Allowance(plain=_names("char charpattern codepoint codes len offset")),
    "coroutine": Allowance(
        plain=_names("isyieldable running status yield"),
        guarded=_names("close create resume wrap"),
    ),
})
"""Library name -> the fields its table holds. The string metatable's ``__index`` is ``string``."""


def global_names() -> frozenset[str]:
    """Every key of a script's global table before extensions add theirs."""
    return GLOBALS.names | frozenset(LIBRARIES) | {SELF}


def lua_layout(globals: Allowance, libraries: Mapping[str, Allowance]) -> tuple[bytes | int, ...]:
    """A policy as sandbox.lua takes it, one flat sequence (a single cheap ``table_from``): for
    each table, ``_G`` (the globals) or the library's name, how many plain names it has, how
    many guarded names, then those names (plain ones first, each kind sorted)."""
    layout: list[bytes | int] = []
    for table, allowance in ((SELF, globals), *libraries.items()):
        plain, guarded = sorted(allowance.plain), sorted(allowance.guarded)
        layout += (table.encode(), len(plain), len(guarded))
        layout += (name.encode() for name in (*plain, *guarded))
    return tuple(layout)


LUA_POLICY = lua_layout(GLOBALS, LIBRARIES)
"""This policy as sandbox.lua takes it (see ``lua_layout``)."""
