#!/usr/bin/env bash
# Create or reuse the project virtual environment (.venv) and install the pinned dependencies
# from envs/requirements.lock plus this package (editable). A second run installs nothing:
# a stamp holds the SHA-256 of the lock file and pyproject.toml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${XCLUSTERS_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.xclusters-stamp"
want="$(cat "$ROOT/envs/requirements.lock" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[env] creating virtual environment $VENV" >&2
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
  echo "[env] installing pinned dependencies (envs/requirements.lock)" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/envs/requirements.lock"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$ROOT"
  echo "$want" > "$STAMP"
else
  echo "[env] $VENV up to date (nothing to install)" >&2
fi
