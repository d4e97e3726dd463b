#!/usr/bin/env bash
# Every benchmark, one table: installs what is missing (scripts/setup), then runs
# `python -m bench.run_all` with any arguments given (e.g. --quick, --only sweep).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup
exec .venv/bin/python -m bench.run_all "$@"
