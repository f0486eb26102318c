#!/usr/bin/env bash
# Set everything up and open the dashboard on the bundled sample data.
# Then browse to http://localhost:8501 (PORT=... to change the port).
# Extra arguments go to streamlit, e.g. --server.address 0.0.0.0
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
echo "Starting the dashboard at http://localhost:${PORT:-8501} (Ctrl+C stops it)"
exec .venv/bin/streamlit run app/main.py --server.port "${PORT:-8501}" \
  --browser.gatherUsageStats false "$@"
