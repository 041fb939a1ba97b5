"""The demo scenes run in a real esper loop, headless; the rogue scene stops its hostile mods."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine_scripting import PermissionDenied, ScriptEngine
from engine_scripting.bench.hostile import BY_NAME as HOSTILE
from engine_scripting.cli import main
from engine_scripting.demo.runner import DEMO_LIMITS, format_result, run_scene
from engine_scripting.demo.scenes import ROGUES, SCENES


@pytest.fixture(scope="module")
def engine() -> Iterator[ScriptEngine]:
    engine = ScriptEngine(DEMO_LIMITS)
    yield engine
    engine.close()


def test_list_names_one_scene_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["fountain", "hunt", "rogue", "quest"]


def test_fountain_spawns_and_ends_particles(roomy_engine: ScriptEngine) -> None:
    result = run_scene("fountain", frames=150, headless=True, snapshot=None, engine=roomy_engine,
                       render=False)
    statuses = {status.name: status for status in result.statuses}
    assert statuses["spawner"].error_count == 0 and statuses["particle"].error_count == 0
    # 4 particles a tick living 1.6-2.4 s: some have ended, hundreds are alive
    assert 200 < statuses["particle"].instances < 4 * 150


def test_hunt_finds_prey_through_the_spatial_index(roomy_engine: ScriptEngine) -> None:
    result = run_scene("hunt", frames=300, headless=True, snapshot=None, engine=roomy_engine,
                       render=False)
    statuses = {status.name: status for status in result.statuses}
    assert all(status.error_count == 0 and status.enabled for status in statuses.values())
    assert statuses["predator"].instances == 4
    # prey were caught (the nest respawns each one from its template) and the count holds
    # a prey caught in the last tick is respawned by the nest in the next one
    assert "has eaten" in format_result(result) and 38 <= statuses["prey"].instances <= 40


def test_rogue_mods_are_stopped_and_the_scene_plays_on(engine: ScriptEngine) -> None:
    frames = 40
    assert all(HOSTILE[name].settle_ticks(DEMO_LIMITS) <= frames for name in ROGUES)
    result = run_scene("rogue", frames=frames, headless=True, snapshot=None, engine=engine,
                       render=False)
    statuses = {status.name: status for status in result.statuses}
    assert statuses["orbiter"].enabled and statuses["orbiter"].calls == frames
    assert statuses["orbiter"].error_count == 0
    for name in ROGUES:
        assert HOSTILE[name].problems(statuses[name]) == ()
    # the cheater's grants are those of an honest ship AI: its first cheat disables it
    cheater = statuses["cheater"]
    assert not cheater.enabled and isinstance(cheater.last_error, PermissionDenied)
    assert "may only send it to its own entity" in str(cheater.last_error)
    assert set(ROGUES) | {"orbiter", "cheater"} == set(statuses)
    assert "DISABLED" in format_result(result)


def test_quest_runs_on_tasks_params_and_config(roomy_engine: ScriptEngine) -> None:
    result = run_scene("quest", frames=900, headless=True, snapshot=None, engine=roomy_engine,
                       render=False)
    statuses = {status.name: status for status in result.statuses}
    assert all(status.error_count == 0 and status.enabled for status in statuses.values()), [
        (status.name, status.last_error) for status in statuses.values()]
    console = "\n".join(result.console_tail)
    assert "Mira: Mind the brambles." in console          # the npc's params, on a timer
    assert "quest: 3 of 3 gems" in console                 # the quest's config
    assert "You found all 3 gems! Here are 50 gold." in console   # task.delay
    assert "hero is home with 3 gems" in console
    assert statuses["gem"].instances == 0


def test_headless_demo_saves_a_snapshot(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = tmp_path / "last.png"
    assert main(["demo", "rogue", "--headless", "--frames", "15",
                 "--snapshot", str(snapshot)]) == 0
    assert snapshot.read_bytes().startswith(b"\x89PNG")
    out = capsys.readouterr().out
    assert "scene rogue: 15 frames" in out and "looper" in out


def test_unknown_scene_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "nowhere", "--headless"]) == 2
    assert "no scene" in capsys.readouterr().err


def test_every_scene_ships_its_scripts() -> None:
    for scene in SCENES.values():
        for script in scene.scripts:
            assert script.file().is_file(), script.name


def test_the_readme_main_command_prints_only_the_demo_report() -> None:
    """`engine-scripting demo` (the README's main command, headless here) writes the report to
    stdout and nothing else: no log lines, no pygame banner, nothing on stderr."""
    import os
    import re
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY", "PYGAME_HIDE_SUPPORT_PROMPT")}
    done = subprocess.run([sys.executable, "-m", "engine_scripting.cli", "demo", "--frames", "20"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    report_line = re.compile(
        r"(scene \w+: \d+ frames|script +instances +calls .*|\w+ +\d+ +\d+ +[\d.]+ .*"
        r"|console \(last lines\):|  (info|warning|error) +\[\w+\] .*|)$")
    strays = [line for line in done.stdout.splitlines() if not report_line.match(line)]
    assert strays == []
    assert done.stdout.count("scene ") == len(SCENES)
