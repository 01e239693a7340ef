#!/usr/bin/env bash
# Install dojoflow into ./.venv (and bubblewrap, for isolated sandboxes, where apt-get is available).
#   ./install.sh          runtime dependencies
#   ./install.sh --test   also the test dependencies
#   ./install.sh --docker also a Docker-API engine and the images (infra/docker/engine.sh up; combine with --test)
set -euo pipefail
cd "$(dirname "$0")"
extras="" docker_engine=""
for arg in "$@"; do
  case "$arg" in
    --test) extras="${extras:+$extras,}test" ;;
    --docker) extras="${extras:+$extras,}docker"; docker_engine=1 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done
extras="${extras:+[$extras]}"

if ! command -v bwrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "installing bubblewrap (isolated sandboxes)..."
    (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 \
      || echo "warning: could not install bubblewrap; dojoflow will use the non-isolated 'local' sandbox" >&2
  else
    echo "warning: bubblewrap (bwrap) not found and cannot be installed here; install it for isolated sandboxes" >&2
  fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
log=.venv/install.log
echo "installing python packages (log: $log)..."
plugin=""
[[ "$extras" == *test* ]] && plugin="-e examples/plugin"  # the example plugin package: the tests drive every extension point
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".${extras}" $plugin; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "install failed; full log in $log" >&2
  exit 1
fi
.venv/bin/python -c "import dojoflow, prefect, mlflow, sklearn" || { echo "install failed: imports broken" >&2; exit 1; }
echo "dojoflow installed in .venv"
if [ -n "$docker_engine" ]; then infra/docker/engine.sh up; eval "$(infra/docker/engine.sh env)"; echo "engine: DOCKER_HOST=${DOCKER_HOST:-default}"; fi
