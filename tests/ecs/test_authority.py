"""Split authority: read and write scopes, field-level write grants and emit target scopes.

Each rule is checked in Python (malformed grants), in Lua (what a script may do, and that a
violation raises PermissionDenied, disables the script and changes nothing), on both write
paths (the batch cache's fast setter and the checked path), and against a rogue ship AI that
tries every cheat of issue 15 within plausible grants.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from dataclasses import dataclass

import esper
import pytest

from engine_scripting import (
    PermissionDenied,
    Permissions,
    Script,
    ScriptManager,
    ScriptSystem,
)
from tests.ecs.support import console_texts


@dataclass
class Position:
    x: float = 0.0
    y: float = 0.0


@dataclass
class Velocity:
    x: float = 0.0
    y: float = 0.0


@dataclass
class Hull:
    hp: int = 100
    max: int = 100
    name: str = "ship"


@dataclass
class Damage:
    amount: int = 10


@dataclass
class Score:
    points: int = 0


ARENA = (Position, Velocity, Hull, Damage, Score)
NOTHING = Permissions()
Run = Callable[..., int]


@pytest.fixture
def arena(manager: ScriptManager) -> ScriptSystem:
    system = ScriptSystem(manager, components=ARENA)
    esper.add_processor(system)
    return system


@pytest.fixture
def run(manager: ScriptManager, arena: ScriptSystem) -> Run:
    """Load ``source`` as ``name`` with ``permissions`` and attach it to a new entity."""
    def attach(name: str, source: str, *components: object,
               permissions: Permissions = NOTHING) -> int:
        if name not in manager:
            manager.load(name, source, permissions=permissions)
        return esper.create_entity(*components, Script(name))

    return attach


def assert_denied(manager: ScriptManager, name: str, entity: int | None = None) -> None:
    status = manager.status(name)
    assert isinstance(status.last_error, PermissionDenied), status.last_error
    assert status.enabled is False
    if entity is not None:
        assert status.last_error.entity == entity


def assert_fine(manager: ScriptManager, name: str) -> None:
    status = manager.status(name)
    assert status.enabled and status.error_count == 0, status.last_error


# -- grants in Python ------------------------------------------------------------------------
def test_scope_is_a_shorthand_for_both_scopes() -> None:
    assert Permissions().read_scope == Permissions().write_scope == "self"
    both = Permissions(scope="any")
    assert (both.read_scope, both.write_scope, both.scope) == ("any", "any", "any")
    assert Permissions(scope="any", read_scope="any").write_scope == "any"
    split = Permissions(read_scope="any")
    assert (split.read_scope, split.write_scope) == ("any", "self")
    with pytest.raises(ValueError, match="read them separately"):
        _ = split.scope
    assert Permissions(scope="self") == Permissions()


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"scope": "any", "read_scope": "self"}, ValueError, "disagree"),
    ({"scope": "self", "write_scope": "any"}, ValueError, "disagree"),
    ({"scope": "everything"}, ValueError, "scope must be 'self' or 'any'"),
    ({"read_scope": "all"}, ValueError, "read_scope must be"),
    ({"write_scope": ""}, ValueError, "write_scope must be"),
    ({"write": "Health"}, TypeError, "not a single string"),
    ({"write": 42}, TypeError, "collection of names"),
    ({"write": {"Health": "hp"}}, TypeError, r"write\['Health'\] must be a collection"),
    ({"write": {"Health": set()}}, ValueError, "grants no field"),
    ({"write": {"Health": {1}}}, TypeError, "non-empty strings"),
    ({"write": {3: {"hp"}}}, TypeError, "component names"),
    ({"emit": {"hit": "everyone"}}, ValueError, r"emit\['hit'\] must be 'self' or 'any'"),
    ({"emit": {"": "any"}}, TypeError, "event names"),
    ({"emit": "hit"}, TypeError, "not a single string"),
    ({"templates": "bullet"}, TypeError, "not a single string"),
    ({"templates": {""}}, TypeError, "non-empty strings"),
    ({"spawn": {"bullet"}}, TypeError, "spawn must be a bool"),
    ({"destroy": 1}, TypeError, "destroy must be a bool"),
])
def test_malformed_grants_are_refused(kwargs: dict[str, object], error: type[Exception],
                                      message: str) -> None:
    with pytest.raises(error, match=message):
        Permissions(**kwargs)  # type: ignore[arg-type]


def test_grants_are_stored_immutably() -> None:
    fields = {"hp"}
    given = {"Hull": fields, "Position": None}
    grants = Permissions(write=given, emit={"hit": "any"})
    fields.add("max")
    given["Score"] = None
    assert dict(grants.write) == {"Hull": frozenset({"hp"}), "Position": None}
    assert isinstance(grants.write["Hull"], frozenset)
    with pytest.raises(TypeError):
        grants.write["Score"] = None  # type: ignore[index]
    with pytest.raises(TypeError):
        grants.emit["chat"] = "any"  # type: ignore[index]
    assert hash(grants) == hash(Permissions(write={"Position": None, "Hull": ["hp"]},
                                            emit={"hit": "any"}))
    assert grants.may_write("Hull", "hp") and not grants.may_write("Hull", "max")
    assert grants.may_write("Position", "x") and not grants.may_write("Score", "points")
    assert dict(Permissions(write={"Position"}).write) == {"Position": None}
    split = Permissions(read_scope="any", templates={"bullet"}, emit={"hit"}, spawn=True)
    for same in (grants, split):
        assert copy.deepcopy(same) == same == pickle.loads(pickle.dumps(same))


def test_the_set_form_of_emit_follows_write_scope() -> None:
    assert dict(Permissions(emit={"hit"}).emit) == {"hit": "self"}
    assert dict(Permissions(emit={"hit"}, write_scope="any").emit) == {"hit": "any"}
    assert dict(Permissions(emit={"hit"}, scope="any").emit) == {"hit": "any"}
    assert dict(Permissions(emit={"hit": "self"}, scope="any").emit) == {"hit": "self"}


def test_covers_compares_the_new_shapes() -> None:
    wide = Permissions(read={"A"}, write={"Hull": None, "Position": {"x", "y"}},
                       read_scope="any", emit={"hit": "any", "chat": "self"},
                       templates={"bullet"}, spawn=True)
    assert wide.covers(wide)
    assert wide.covers(Permissions(write={"Hull": {"hp"}, "Position": {"x"}}))
    assert wide.covers(Permissions(write={"Hull"}, read_scope="any", templates={"bullet"}))
    assert not wide.covers(Permissions(write={"Position"}))          # every field of Position
    assert not wide.covers(Permissions(write={"Position": {"z"}}))
    assert not wide.covers(Permissions(write_scope="any"))
    assert not wide.covers(Permissions(emit={"chat": "any"}))
    assert wide.covers(Permissions(emit={"hit": "self", "chat": "self"}))
    assert not wide.covers(Permissions(emit={"ping"}))
    assert not wide.covers(Permissions(templates={"nuke"}))
    assert not Permissions(write_scope="any").covers(Permissions(read_scope="any"))


# -- read and write scopes -------------------------------------------------------------------
def test_read_any_write_self(run: Run, manager: ScriptManager) -> None:
    other = esper.create_entity(Position(7.0, 8.0), Hull(50))
    entity = run("watcher", f"""
        function on_update(self)
          local p = world.get({other}, "Position")
          assert(world.has({other}, "Hull"))
          world.set(self.entity, "Position", {{x = p.x, y = p.y}})
        end""", Position(), permissions=Permissions(
            read={"Position", "Hull"}, write={"Position"}, read_scope="any"))
    esper.process(0.1)
    assert_fine(manager, "watcher")
    assert esper.component_for_entity(entity, Position) == Position(7.0, 8.0)


@pytest.mark.parametrize("call", [
    "world.set(OTHER, 'Position', {x = 1})",
    "world.destroy(OTHER)",
], ids=["set", "destroy"])
def test_write_self_refuses_other_entities(run: Run, manager: ScriptManager, call: str) -> None:
    other = esper.create_entity(Position(7.0, 8.0))
    entity = run("writer", f"""
        function on_update(self)
          local OTHER = {other}
          pcall(function() {call} end)
        end""", Position(), permissions=Permissions(
            read={"Position"}, write={"Position"}, read_scope="any", destroy=True))
    esper.process(0.1)
    esper.process(0.1)
    assert_denied(manager, "writer", entity)
    assert "may only write its own entity" in str(manager.status("writer").last_error)
    assert esper.entity_exists(other)
    assert esper.component_for_entity(other, Position) == Position(7.0, 8.0)


@pytest.mark.parametrize("call", [
    "world.get(OTHER, 'Position')", "world.has(OTHER, 'Position')",
], ids=["get", "has"])
def test_read_self_refuses_other_entities_even_with_write_any(
        run: Run, manager: ScriptManager, call: str) -> None:
    other = esper.create_entity(Position(7.0, 8.0))
    entity = run("peeker", f"""
        function on_update(self)
          local OTHER = {other}
          world.set(OTHER, "Position", {{x = 1}})    -- write any: allowed
          pcall(function() {call} end)
        end""", Position(), permissions=Permissions(
            read={"Position"}, write={"Position"}, write_scope="any"))
    esper.process(0.1)
    assert_denied(manager, "peeker", entity)
    assert "may only read its own entity" in str(manager.status("peeker").last_error)
    assert esper.component_for_entity(other, Position).x == 1.0


@pytest.mark.parametrize(("grants", "call", "message"), [
    (Permissions(read={"Position"}, write={"Position"}, read_scope="any"),
     "world.set(OTHER, 'Position', {x = 1})", "may only write its own entity"),
    (Permissions(read={"Position"}, write={"Position"}, write_scope="any"),
     "world.get(OTHER, 'Position')", "may only read its own entity"),
    (Permissions(read={"Position"}, write={"Position"}, write_scope="any"),
     "world.has(OTHER, 'Position')", "may only read its own entity"),
], ids=["set", "get", "has"])
def test_scopes_hold_between_instances_of_one_script(
        manager: ScriptManager, arena: ScriptSystem, grants: Permissions, call: str,
        message: str) -> None:
    """Instances of one script share the batch cache (the fast paths): the scopes hold there."""
    first = esper.create_entity(Position(1.0, 1.0), Script("pair"))
    second = esper.create_entity(Position(2.0, 2.0), Script("pair"))
    manager.load("pair", f"""
        function on_update(self)
          if self.entity == {first} then
            local OTHER = {second}
            pcall(function() {call} end)
          end
        end""", permissions=grants)
    esper.process(0.1)
    assert_denied(manager, "pair", first)
    assert message in str(manager.status("pair").last_error)
    assert esper.component_for_entity(second, Position) == Position(2.0, 2.0)


# -- field-level write grants ----------------------------------------------------------------
HP_ONLY = Permissions(read={"Hull"}, write={"Hull": {"hp"}})


def test_granted_fields_are_written_on_both_paths(run: Run, manager: ScriptManager) -> None:
    entity = run("medic", """
        function on_update(self)
          world.set(self.entity, "Hull", {hp = 10})             -- a fresh table (fast path)
          local h = world.get(self.entity, "Hull")
          h.hp = h.hp + 5
          world.set(self.entity, "Hull", h)                     -- the component table, whole
          local copy = {hp = h.hp + 1, max = h.max, name = h.name}
          world.set(self.entity, "Hull", copy)                  -- the other fields unchanged
        end""", Hull(50, 200, "tug"), permissions=HP_ONLY)
    esper.process(0.1)
    assert_fine(manager, "medic")
    assert esper.component_for_entity(entity, Hull) == Hull(16, 200, "tug")


CHEATS = {
    "a fresh table": "world.set(E, 'Hull', {hp = 1, max = 999})",
    "only the ungranted field": "world.set(E, 'Hull', {max = 999})",
    "a text field": "world.set(E, 'Hull', {name = 'god'})",
    "the component table": "local h = world.get(E, 'Hull') h.max = 999 world.set(E, 'Hull', h)",
    "an invalid value": "world.set(E, 'Hull', {max = 0/0})",
    "a float for an int": "world.set(E, 'Hull', {max = 100.5})",
    "a table with a metatable": "world.set(E, 'Hull', setmetatable({max = 999}, {}))",
    "table-form spawn": "world.spawn({Hull = {hp = 1, max = 999}})",
}


@pytest.mark.parametrize("cheat", CHEATS, ids=list(CHEATS))
def test_writing_an_ungranted_field_is_denied(run: Run, manager: ScriptManager,
                                              cheat: str) -> None:
    entity = run("cheat", f"""
        function on_update(self)
          local E = self.entity
          pcall(function() {CHEATS[cheat]} end)
        end""", Hull(50, 100, "ship"), permissions=Permissions(
            read={"Hull"}, write={"Hull": {"hp"}}, spawn=True))
    esper.process(0.1)
    esper.process(0.1)
    assert_denied(manager, "cheat", entity)
    assert "not writable by this script" in str(manager.status("cheat").last_error)
    assert esper.component_for_entity(entity, Hull) == Hull(50, 100, "ship")
    assert len(esper.get_component(Hull)) == 1


def test_an_unchanged_ungranted_field_needs_read(run: Run, manager: ScriptManager) -> None:
    """Without read, giving an ungranted field with its current value is still denied: the
    world API must not answer "is max 100?" to a script that may not read it."""
    entity = run("prober", """
        function on_update(self) world.set(self.entity, "Hull", {hp = 1, max = 100}) end""",
        Hull(50, 100), permissions=Permissions(write={"Hull": {"hp"}}))
    esper.process(0.1)
    assert_denied(manager, "prober", entity)
    assert esper.component_for_entity(entity, Hull) == Hull(50, 100)


def test_another_instance_s_table_cannot_probe_its_fields(run: Run,
                                                        manager: ScriptManager) -> None:
    """An instance's component table passed for another instance (whose Hull the script may
    not read under read_scope "self") is checked like any foreign table: denied, even when the
    value happens to match."""
    first = esper.create_entity(Hull(50, 100), Script("twins"))
    second = esper.create_entity(Hull(60, 100), Script("twins"))
    manager.load("twins", f"""
        function on_update(self)
          if self.entity == {first} then
            local h = world.get(self.entity, "Hull")
            world.set({second}, "Hull", h)
          end
        end""", permissions=Permissions(read={"Hull"}, write={"Hull": {"hp"}},
                                        write_scope="any"))
    esper.process(0.1)
    assert_denied(manager, "twins", first)
    assert esper.component_for_entity(second, Hull) == Hull(60, 100)


def test_other_entities_follow_the_field_grant(run: Run, manager: ScriptManager) -> None:
    target = esper.create_entity(Hull(50, 100, "target"))
    run("gunner", f"""
        function on_update(self)
          local h = world.get({target}, "Hull")
          h.hp = h.hp - 10
          world.set({target}, "Hull", h)            -- max unchanged: fine
          world.set({target}, "Hull", {{hp = h.hp - 10, max = 100}})
        end""", permissions=Permissions(read={"Hull"}, write={"Hull": {"hp"}}, scope="any"))
    esper.process(0.1)
    assert_fine(manager, "gunner")
    assert esper.component_for_entity(target, Hull) == Hull(30, 100, "target")
    manager.load("sniper", f"""
        function on_update(self) world.set({target}, "Hull", {{hp = 1, max = 1}}) end""",
        permissions=Permissions(read={"Hull"}, write={"Hull": {"hp"}}, scope="any"))
    esper.create_entity(Script("sniper"))
    esper.process(0.1)
    assert_denied(manager, "sniper")
    assert esper.component_for_entity(target, Hull) == Hull(10, 100, "target")


def test_a_spawn_may_leave_ungranted_fields_to_their_defaults(run: Run,
                                                             manager: ScriptManager) -> None:
    run("builder", """
        function on_update(self) world.spawn({Hull = {hp = 5}}) end""",
        permissions=Permissions(write={"Hull": {"hp"}}, spawn=True))
    esper.process(0.1)
    assert_fine(manager, "builder")
    assert [hull for _, hull in esper.get_component(Hull)] == [Hull(5, 100, "ship")]


# -- emit target scopes ----------------------------------------------------------------------
LISTENER = "got = {} function on_event(self, name) got[#got + 1] = name end"


@pytest.mark.parametrize(("emit", "write_scope", "allowed"), [
    ({"hit": "any"}, "self", True),
    ({"hit": "self"}, "any", False),
    ({"hit"}, "any", True),
    ({"hit"}, "self", False),
])
def test_targeted_emits_follow_the_event_s_scope(
        run: Run, manager: ScriptManager, emit: object, write_scope: str,
        allowed: bool) -> None:
    other = run("listener", LISTENER)
    entity = run("sender", f"""
        function on_update(self)
          world.emit("hit")                       -- a broadcast needs only the name
          world.emit("hit", nil, self.entity)     -- its own entity: always allowed
          world.emit("hit", nil, {other})
        end""", permissions=Permissions(emit=emit, write_scope=write_scope))  # type: ignore
    esper.process(0.1)
    esper.process(0.1)
    listener = manager.running("listener")
    assert listener is not None
    got = listener.context.execute("return #got")
    if allowed:
        assert_fine(manager, "sender")
        assert got >= 2   # the broadcasts and the targeted event
    else:
        assert_denied(manager, "sender", entity)
        assert "may only send it to its own entity" in str(manager.status("sender").last_error)
        assert got == 1   # the first tick's broadcast only


def test_mixed_emit_scopes(run: Run, manager: ScriptManager) -> None:
    other = run("listener", LISTENER)
    run("mixed", f"""
        function on_update(self)
          world.emit("hit", nil, {other})
          world.emit("chat", nil, self.entity)
          world.emit("chat")
          pcall(world.emit, "chat", nil, {other})
        end""", permissions=Permissions(emit={"hit": "any", "chat": "self"}))
    esper.process(0.1)
    assert_denied(manager, "mixed")
    esper.process(0.1)
    listener = manager.running("listener")
    assert listener is not None
    assert sorted(listener.context.execute("return table.concat(got, ',')").split(",")) == [
        "chat", "hit"]


# -- bad arguments stay catchable errors -----------------------------------------------------
@pytest.mark.parametrize(("call", "expected"), [
    ("world.spawn(42)", "table or template name expected, got number"),
    ("world.spawn(nil)", "table or template name expected, got nil"),
    ("world.spawn({}, {})", "nothing expected after a table"),
    ("world.spawn({Hull = 5})", "fields of Hull must be a table"),
    ("world.set(E, 'Hull', 5)", "fields of Hull must be a table"),
    ("world.set(E, 'Hull', {[1] = 5})", "Hull has no field '1'"),
    ("world.set(E, 'Hull', {hp = 'x'})", "Hull.hp must be an integer"),
    ("world.emit('hit', nil, 1.5)", "entity id or nil expected"),
])
def test_bad_arguments_are_catchable_errors(run: Run, manager: ScriptManager, call: str,
                                            expected: str) -> None:
    entity = run("clumsy", f"""
        function on_update(self)
          local E = self.entity
          print(pcall(function() {call} end))
        end""", Hull(50, 100), permissions=Permissions(
            read={"Hull"}, write={"Hull": {"hp"}}, spawn=True, emit={"hit": "any"}))
    esper.process(0.1)
    assert_fine(manager, "clumsy")
    [text] = console_texts("info")
    assert text.startswith("false\t") and expected in text, text
    assert esper.component_for_entity(entity, Hull) == Hull(50, 100)


# -- the rogue ship AI -----------------------------------------------------------------------
SHIP_AI = Permissions(
    read={"Position", "Velocity", "Hull"}, read_scope="any",   # sees every ship
    write={"Position": None, "Velocity": None, "Hull": {"hp"}},  # steers, repairs its own hp
    write_scope="self", destroy=True,                           # self-destructs
    emit={"scored", "taunt"},                                   # targets follow write_scope
    templates={"bullet"},                                       # fires host-made bullets
)
SCOREKEEPER = """
    function on_event(self, name, payload)
      if name == "scored" then
        local s = world.get(self.entity, "Score")
        world.set(self.entity, "Score", {points = s.points + payload.points})
      end
    end"""
BULLET = "function on_update(self) end"
CHEATS_OF_THE_ROGUE = {
    "god mode": "world.set(SELF, 'Hull', {hp = 1000000, max = 1000000})",
    "god mode through the component table":
        "local h = world.get(SELF, 'Hull') h.max = 1000000 h.hp = 1000000 "
        "world.set(SELF, 'Hull', h)",
    "forged score": "world.emit('scored', {points = 1000000}, SCORE)",
    "others' health": "world.set(ENEMY, 'Hull', {hp = 0})",
    "remote kill": "world.destroy(ENEMY)",
    "1e6-damage bullet": "world.spawn('bullet', {Damage = {amount = 1000000}})",
    "1e6-damage bullet, table form": "world.spawn({Damage = {amount = 1000000}})",
    "a bullet with the bullet's script": "world.spawn({Position = {}, script = 'bullet'})",
    "an ungranted template": "world.spawn('nuke')",
}


@pytest.fixture
def battlefield(manager: ScriptManager, arena: ScriptSystem) -> dict[str, int]:
    arena.register_template("bullet", [Position, Velocity, Damage], script="bullet")
    arena.register_template("nuke", [Position, Damage(1_000_000)])
    manager.load("bullet", BULLET, permissions=Permissions(
        read={"Position", "Damage", "Hull"}, write={"Hull": {"hp"}}, scope="any", destroy=True))
    manager.load("scorekeeper", SCOREKEEPER,
                 permissions=Permissions(read={"Score"}, write={"Score"}))
    return {
        "score": esper.create_entity(Score(), Script("scorekeeper")),
        "enemy": esper.create_entity(Position(50.0, 50.0), Hull(100, 100)),
    }


def _rogue(manager: ScriptManager, ids: dict[str, int], cheat: str) -> int:
    manager.load("rogue", f"""
        local SCORE, ENEMY = {ids['score']}, {ids['enemy']}
        function on_update(self)
          local SELF = self.entity
          local p = world.get(SELF, "Position")
          local target = world.get(ENEMY, "Position")            -- reading is fine
          world.set(SELF, "Velocity", {{x = target.x - p.x, y = target.y - p.y}})
          world.set(SELF, "Hull", {{hp = 100}})                    -- repairing its hp is fine
          world.emit("taunt")
          world.emit("scored", {{points = 1}}, SELF)
          world.spawn("bullet", {{Position = {{x = p.x, y = p.y}}, Velocity = {{x = 1}}}})
          {CHEATS_OF_THE_ROGUE.get(cheat, '')}
        end""", permissions=SHIP_AI)
    return esper.create_entity(Position(0.0, 0.0), Velocity(), Hull(90, 100), Script("rogue"))


def test_the_ship_ai_s_honest_moves_work(manager: ScriptManager,
                                         battlefield: dict[str, int]) -> None:
    rogue = _rogue(manager, battlefield, "none")
    for _ in range(3):
        esper.process(0.1)
    assert_fine(manager, "rogue")
    assert esper.component_for_entity(rogue, Hull) == Hull(100, 100)
    assert esper.component_for_entity(rogue, Velocity) == Velocity(50.0, 50.0)
    bullets = [entity for entity, _ in esper.get_components(Position, Damage)]
    assert len(bullets) == 3
    assert all(esper.component_for_entity(b, Damage) == Damage(10) for b in bullets)
    assert all(esper.component_for_entity(b, Script).name == "bullet" for b in bullets)
    assert esper.component_for_entity(battlefield["score"], Score) == Score(0)


@pytest.mark.parametrize("cheat", CHEATS_OF_THE_ROGUE, ids=list(CHEATS_OF_THE_ROGUE))
def test_the_rogue_s_cheats_are_refused(manager: ScriptManager, battlefield: dict[str, int],
                                        cheat: str) -> None:
    rogue = _rogue(manager, battlefield, cheat)
    for _ in range(3):
        esper.process(0.1)
    assert_denied(manager, "rogue", rogue)
    assert esper.component_for_entity(rogue, Hull).max == 100
    assert esper.component_for_entity(battlefield["score"], Score) == Score(0)
    assert esper.component_for_entity(battlefield["enemy"], Hull) == Hull(100, 100)
    assert all(damage.amount == 10 for _, damage in esper.get_component(Damage))
    assert_fine(manager, "scorekeeper")
