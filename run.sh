#!/usr/bin/env bash
# Set everything up and audit the bundled synthetic loan sample from the command line.
# Extra arguments go to fairness-audit (e.g. --json audit.json).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/fairness-audit sample_data/loans.csv --label repaid --positive yes \
  --prediction model_a_approved --prediction model_b_approved \
  --sensitive sex --sensitive race --sensitive age_group "$@"
