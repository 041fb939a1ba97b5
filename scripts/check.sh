#!/usr/bin/env bash
# Developer checks before a commit: lint, types, no module-level mutable state, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
mypy --strict engine_scripting
if [ -f ../shared/tools/check_global_state.py ]; then
  python3 ../shared/tools/check_global_state.py engine_scripting
fi
pytest -q
