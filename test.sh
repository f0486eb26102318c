#!/usr/bin/env bash
# Set everything up (venv, packages, Debian's chromium, Java and PostgreSQL) and run
# the whole test suite.
# Extra arguments go to pytest, e.g. ./test.sh -k differential
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh --browser --test-data --engines
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure, not a pass" >&2
fi
exit "$rc"
