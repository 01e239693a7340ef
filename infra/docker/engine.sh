#!/usr/bin/env bash
# A Docker-API engine for machines without dockerd: podman (Debian) serving the Docker engine API on a unix
# socket, plus the images the docker backend and the Docker work pool need, built offline.
#
#   infra/docker/engine.sh install   apt-get install podman, runc, mmdebstrap (root, Debian/Ubuntu)
#   infra/docker/engine.sh start     write the configuration, start `podman system service`, print DOCKER_HOST
#   infra/docker/engine.sh build     the base image (mmdebstrap + podman import), a host-made wheelhouse,
#                                    then dojoflow-sandbox and dojoflow-worker FROM the base image
#   infra/docker/engine.sh up        install + start + build (what .ci/run and `install.sh --docker` call)
#   infra/docker/engine.sh env       print `export DOCKER_HOST=...` for this engine
#   infra/docker/engine.sh stop      stop the service and remove every container it ran
#   infra/docker/engine.sh purge     stop, then delete the images, storage and wheelhouse
#
# Everything lives under $DOJOFLOW_ENGINE_DIR (default: .cache/docker-engine in the clone, gitignored), so a
# CI cache of that folder keeps the base image, the wheelhouse and podman's image storage between runs.
# A machine with a real Docker engine does not need this: the tests use DOCKER_HOST / the default socket
# when an engine answers there, and `docker build` builds the same Dockerfiles (see infra/docker/README.md).
#
# Why the configuration is what it is (measured on this project's CI machines, docs/cluster.md):
#   runtime runc           crun refuses the hybrid cgroup hierarchy of these kernels;
#   cgroup_manager cgroupfs  there is no systemd to delegate cgroups;
#   events_logger file     no journald;
#   default_ulimits        within the host's hard limits (higher defaults fail: "setrlimit: Operation not permitted").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="${DOJOFLOW_ENGINE_DIR:-$ROOT/.cache/docker-engine}"
SOCKET="$DIR/podman.sock"
SUITE="${DOJOFLOW_BASE_SUITE:-bookworm}"
BASE_IMAGE="${DOJOFLOW_BASE_IMAGE:-dojoflow-base:$SUITE}"
# python3-venv: pip for the images (Debian's python has no pip of its own); passwd: useradd;
# bubblewrap: the worker image's sandboxes
BASE_PACKAGES="python3,python3-venv,passwd,bubblewrap,procps"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3

export CONTAINERS_CONF="$DIR/containers.conf" CONTAINERS_STORAGE_CONF="$DIR/storage.conf"

log() { echo "[engine] $*" >&2; }

write_config() {
  mkdir -p "$DIR/storage" "$DIR/run" "$DIR/tmp"
  cat >"$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$DIR/run/events.log"
tmp_dir = "$DIR/tmp"
CONF
  cat >"$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "overlay"
graphroot = "$DIR/storage"
runroot = "$DIR/run/storage"
CONF
}

cmd_install() {
  local missing=()
  for bin in podman runc mmdebstrap; do command -v "$bin" >/dev/null || missing+=("$bin"); done
  [ ${#missing[@]} = 0 ] && return 0
  [ "$(id -u)" = 0 ] || { log "need root to apt-get install ${missing[*]}"; exit 1; }
  log "apt-get install podman runc mmdebstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends podman runc mmdebstrap uidmap >/dev/null
}

answers() { [ -S "$SOCKET" ] && curl -sf --max-time 5 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }

cmd_start() {
  write_config
  if answers; then log "already serving on unix://$SOCKET"; cmd_env; return 0; fi
  rm -f "$SOCKET"
  log "starting podman system service on unix://$SOCKET (log: $DIR/service.log)"
  # setsid: the service outlives this script; its pid is kept for `stop`
  # (in $DIR: conmon drops files such as `oom` in the service's working directory)
  (cd "$DIR" && exec setsid podman system service --time=0 "unix://$SOCKET" >"$DIR/service.log" 2>&1 </dev/null) &
  echo $! >"$DIR/service.pid"
  for _ in $(seq 100); do answers && { cmd_env; return 0; }; sleep 0.2; done
  log "the service did not answer; see $DIR/service.log"; tail -n 20 "$DIR/service.log" >&2; exit 1
}

cmd_env() { echo "export DOCKER_HOST=unix://$SOCKET"; }

image_exists() { podman image exists "$1"; }

build_base() {
  if image_exists "$BASE_IMAGE"; then log "base image $BASE_IMAGE present"; return 0; fi
  local tar="$DIR/base-$SUITE.tar"
  if [ ! -s "$tar" ]; then
    log "mmdebstrap $SUITE (minbase + $BASE_PACKAGES)"
    mmdebstrap --quiet --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$tar.part.tar"  # the format follows the name
    mv "$tar.part.tar" "$tar"
  fi
  podman import --quiet "$tar" "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE"
}

# The wheelhouse: every wheel the images install, made here (where the package index is reachable), so that
# builds run with no network at all, as they would on an air-gapped cluster.
build_wheelhouse() {
  local wh="$DIR/wheelhouse" stamp
  stamp="$(cat "$ROOT/pyproject.toml" "$ROOT/infra/docker/requirements-sandbox.txt" "$ROOT/infra/docker/requirements-worker.txt" "$0" | sha256sum | cut -c1-16)"
  if [ -f "$wh/.stamp" ] && [ "$(cat "$wh/.stamp")" = "$stamp" ]; then log "wheelhouse up to date"; return 0; fi
  mkdir -p "$wh"
  log "building the wheelhouse ($wh)"
  "$PYTHON" -m pip wheel -q -w "$wh" -r "$ROOT/infra/docker/requirements-sandbox.txt" \
    -r "$ROOT/infra/docker/requirements-worker.txt" "$ROOT" "setuptools>=68" wheel >"$DIR/wheelhouse.log" 2>&1 \
    || { tail -n 30 "$DIR/wheelhouse.log" >&2; exit 1; }
  rm -f "$wh"/dojoflow-*.whl  # the worker image installs the checkout itself (setuptools, wheel: to build it)
  # Dependencies behind markers of the images' Python (Debian's 3.11.2, not the host's 3.11.x): pip evaluates
  # python_full_version markers for the host even with --python-version, so they are named here (redis
  # needs async-timeout below 3.11.3)
  "$PYTHON" -m pip wheel -q -w "$wh" --find-links "$wh" "async-timeout>=4.0.3" >>"$DIR/wheelhouse.log" 2>&1 \
    || { tail -n 30 "$DIR/wheelhouse.log" >&2; exit 1; }
  echo "$stamp" >"$wh/.stamp"
}

# A small build context laid out as the repository (whose own context would carry .venv and .cache): the
# Dockerfiles COPY infra/docker/ (with wheelhouse/), pyproject.toml, README.md and dojoflow/ from it.
build_image() {  # TAG DOCKERFILE
  local tag="$1" dockerfile="$2" ctx="$DIR/context"
  rm -rf "$ctx" && mkdir -p "$ctx/infra"
  cp -r "$ROOT/infra/docker" "$ctx/infra/docker"
  rm -rf "$ctx/infra/docker/wheelhouse"
  cp -al "$DIR/wheelhouse" "$ctx/infra/docker/wheelhouse" 2>/dev/null || cp -a "$DIR/wheelhouse" "$ctx/infra/docker/wheelhouse"
  cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$ctx/"
  cp -r "$ROOT/dojoflow" "$ctx/dojoflow"
  find "$ctx/dojoflow" -name __pycache__ -prune -exec rm -rf {} +
  log "building $tag from $BASE_IMAGE ($dockerfile, offline)"
  podman build --network=none --pull=never --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg WHEELHOUSE=1 \
    -t "$tag" -f "$ROOT/$dockerfile" "$ctx" >"$DIR/build-${tag%%:*}.log" 2>&1 \
    || { tail -n 30 "$DIR/build-${tag%%:*}.log" >&2; exit 1; }
  rm -rf "$ctx"
}

cmd_build() {
  write_config
  build_base
  build_wheelhouse
  build_image dojoflow-sandbox:latest infra/docker/Dockerfile
  build_image dojoflow-worker:latest infra/docker/Dockerfile.worker
  log "images: $(podman images --format '{{.Repository}}:{{.Tag}}' | tr '\n' ' ')"
}

cmd_stop() {
  write_config
  podman rm -af >/dev/null 2>&1 || true
  if [ -f "$DIR/service.pid" ]; then
    local pid; pid="$(cat "$DIR/service.pid")"
    if kill -0 "$pid" 2>/dev/null; then kill "$pid"; for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; fi
    rm -f "$DIR/service.pid"
  fi
  rm -f "$SOCKET"
  log "stopped"
}

cmd_purge() {
  cmd_stop
  podman system reset --force >/dev/null 2>&1 || true
  rm -rf "$DIR"
  log "purged $DIR"
}

# A real Docker engine (DOCKER_HOST or the default socket) is used unchanged: only the images are built, with
# `docker build` from the Dockerfiles' defaults (the official python image, from its registry).
real_docker() { command -v docker >/dev/null && DOCKER_HOST="${DOCKER_HOST:-}" docker version --format '{{.Server.Version}}' 2>/dev/null | grep -qv podman; }

docker_build() {
  log "a Docker engine answers at ${DOCKER_HOST:-the default socket}: building the images with docker build"
  docker build -q -t dojoflow-sandbox:latest -f "$ROOT/infra/docker/Dockerfile" "$ROOT" >/dev/null
  docker build -q -t dojoflow-worker:latest -f "$ROOT/infra/docker/Dockerfile.worker" "$ROOT" >/dev/null
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  build) cmd_build ;;
  up) start=$SECONDS
      if real_docker; then docker_build; else cmd_install; cmd_start; cmd_build; fi
      log "engine and images ready in $((SECONDS - start)) s" ;;
  env) cmd_env ;;
  stop) cmd_stop ;;
  purge) cmd_purge ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
