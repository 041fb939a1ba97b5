#!/usr/bin/env python3
"""Soak run: 100,000 ticks, 100 well-behaved scripts, and the hostile scripts of the catalogue
(engine_scripting/bench/hostile; engine_scripting.bench.soak.HOSTILE) re-added every 2,000
ticks. Prints resident memory over time (read after the C heap's free pages went back to the
system, so that glibc's retained free memory does not pass for growth) and checks that growth
stays bounded, that unloaded scripts' Lua states are freed, and that the well-behaved scripts
end in exactly the state of a run without the hostile ones.

Usage: python scripts/soak.py [--ticks N] [--scripts N] [--every N]
"""

from __future__ import annotations

import argparse
import logging
import sys

import structlog

from engine_scripting.bench.soak import HOSTILE, run_soak


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=100_000)
    parser.add_argument("--scripts", type=int, default=100)
    parser.add_argument("--every", type=int, default=2_000, help="ticks per hostile round")
    parser.add_argument("--max-growth-mib", type=float, default=64.0)
    options = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))

    def report(tick: int, rss_kib: int) -> None:
        sys.stdout.write(f"tick {tick:>7}  resident {rss_kib / 1024:8.1f} MiB\n")
        sys.stdout.flush()

    # every reading at the same point of a hostile round (its end), so that they compare: within
    # a round the leaking script's state grows to its limit
    every = options.every
    report_every = max(every, options.ticks // 20 // every * every)
    sys.stdout.write(f"with {len(HOSTILE)} hostile scripts: "
                     f"{', '.join(entry.name for entry in HOSTILE)}\n")
    crowded = run_soak(options.ticks, options.scripts, hostile=True,
                       hostile_every=every, report_every=report_every,
                       progress=report)
    sys.stdout.write("without hostile scripts (the reference)\n")
    alone = run_soak(options.ticks, options.scripts, hostile=False,
                     report_every=max(1, options.ticks // 5), progress=report)
    growth_mib = crowded.rss_growth_kib / 1024
    same = crowded.good_state == alone.good_state
    sys.stdout.write(
        f"\nhostile rounds: {crowded.hostile_rounds}; Lua states unloaded "
        f"{crowded.states_unloaded}, freed {crowded.states_freed}\n"
        f"resident growth after warm-up: {growth_mib:.1f} MiB "
        f"(limit {options.max_growth_mib} MiB)\n"
        f"well-behaved scripts' errors: {crowded.good_errors}; "
        f"same final state as without hostile scripts: {same}\n"
    )
    ok = (same and crowded.good_errors == 0 and growth_mib <= options.max_growth_mib
          and crowded.states_freed == crowded.states_unloaded)
    sys.stdout.write("PASS\n" if ok else "FAIL\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
