"""A reduced soak run (scripts/soak.py is the full one): hostile scripts come and go beside
well-behaved ones; memory stays bounded, unloaded Lua states are freed, and the well-behaved
scripts end exactly as they do without hostile neighbours."""

from __future__ import annotations

from engine_scripting.bench.soak import HOSTILE, run_soak


def test_reduced_soak() -> None:
    crowded = run_soak(360, 6, hostile=True, hostile_every=120, report_every=60)
    alone = run_soak(360, 6, hostile=False, report_every=120)
    assert crowded.hostile_rounds == 3
    assert crowded.states_unloaded == 3 * len(HOSTILE)
    assert crowded.states_freed == crowded.states_unloaded
    assert crowded.good_errors == 0
    assert crowded.good_state == alone.good_state
    assert len(crowded.good_state) == 12
    # generous: the run allocates and frees 3 * len(HOSTILE) sandboxes, each up to its 8 MiB
    # memory limit
    assert crowded.rss_growth_kib < 64 * 1024
