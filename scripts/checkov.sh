#!/usr/bin/env bash
# Static security checks of the Bicep in infra/ (CI calls this).
#
# checkov lives in its own virtualenv (.venv-checkov) because its many pinned dependencies
# would fight the app's. It runs offline (--skip-download). infra/graph/ is skipped because
# checkov's Bicep parser cannot read the `extension microsoftGraphV1` keyword; that file is
# checked by tests/unit/test_infra.py instead. Any other file that fails to parse fails the
# run (checkov itself only reports parse errors, it does not fail on them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CHECKOV_VENV:-$ROOT/.venv-checkov}"
CHECKOV_VERSION="3.3.30"

if [ ! -x "$VENV/bin/checkov" ] || ! "$VENV/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi

cd "$ROOT"
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
set +e
"$VENV/bin/checkov" -d infra --framework bicep --skip-download --compact --skip-path infra/graph "$@" | tee "$OUT"
STATUS=${PIPESTATUS[0]}
set -e

if grep -Eq "Parsing errors: [1-9]" "$OUT"; then
  echo "checkov.sh: a Bicep file outside infra/graph failed to parse (see 'Parsing errors' above)" >&2
  exit 1
fi
exit "$STATUS"
