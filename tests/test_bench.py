"""The bench report runs end to end (tiny sizes: the real figures come from the CLI)."""

from __future__ import annotations

import esper

from engine_scripting.bench.report import (
    Report,
    evaluate,
    format_report,
    measure_compute,
    measure_loading,
    measure_profiling,
    measure_scenes,
)
from engine_scripting.bench.workloads import WORKLOADS


def test_the_report_measures_and_formats_every_figure() -> None:
    previous = esper.current_world
    report = Report()
    steps: list[str] = []
    measure_scenes((1, 20), 1, report, steps.append)
    measure_profiling(10, 1, report)
    measure_compute(1, report)
    measure_loading(5, report)
    evaluate(report)
    esper.switch_world(previous)
    assert steps == [f"the {scene} scene at 1, 20 entities"
                     for scene in ("empty", "movers", "logic")]
    assert {(f.scene, f.entities) for f in report.scenes} == {
        (scene, count) for scene in ("empty", "movers", "logic") for count in (1, 20)}
    assert all(f.sandboxed_us > 0 and f.trusted_us > 0 for f in report.scenes)
    assert len(report.compute) == len(WORKLOADS) and report.load_count == 5
    assert [t.figure for t in report.targets] == [
        "security tax", "vs plain Python", "system overhead", "compute"]
    text = format_report(report)
    assert "security tax" in text and "movers" in text
    assert isinstance(report.as_dict()["targets"], list)
