"""The ``docker`` backend: one throw-away container per step, through the Docker engine API (docker SDK).

What the container gets (see ``DockerBackend.create_kwargs``):

- the image ``dojoflow-sandbox:latest`` (``infra/docker/Dockerfile``; ``DOJOFLOW_DOCKER_IMAGE``), or for a
  step with a GPU ``dojoflow-sandbox-cuda:latest`` (``infra/docker/Dockerfile.cuda``;
  ``DOJOFLOW_DOCKER_GPU_IMAGE``). Images are never pulled: a missing image is an error that says how to
  build it;
- ``/workspace``: the episode workspace, read-write, the working directory and ``HOME``; the public data
  bind-mounted **read-only** at ``/workspace/data``; a read-only root filesystem, ``/tmp`` a size-limited
  tmpfs;
- no network (``network_mode="none"``), no capabilities, ``no-new-privileges``, a seccomp profile refusing
  new user namespaces (:func:`userns_seccomp_profile`), a non-root uid (as root
  the harness uses the per-workspace uid of the bwrap backend and hands the workspace to it);
- limits: memory (and swap) from ``memory_mb`` as a cgroup limit for the whole container, ``nano_cpus``
  (``DOJOFLOW_DOCKER_CPUS``, default 1 CPU), ``pids_limit`` from ``max_processes``, ulimits for file size,
  CPU time, open files, processes and core dumps; the wall clock is enforced here (the container is killed at the
  deadline) and the output cap while the logs stream (head and tail kept, as for the other backends);
- a GPU, when ``request.gpu`` is set, through a device request for that host index (the container then
  sees it as device 0, so ``CUDA_VISIBLE_DEVICES=0`` inside).

Every container is labelled ``dojoflow=sandbox`` and ``dojoflow.episode=<episode>`` and is force-removed
after its step whatever happened; :func:`cleanup` removes leftovers (e.g. after the harness was killed).
The engine must see the workspace at the same path as the harness (a local engine, not a remote one).

``cpu_s`` and ``peak_memory_mb`` come from the engine's stats of the container's cgroup (the whole process
tree), sampled with one-shot stats requests every ``stats_interval_s`` while the step runs (:class:`_Stats`):
the cgroup is gone once the container exits, so the CPU time of the last interval and a memory spike shorter
than one interval can be missed (a step that ends before the first sample reports 0). This works unchanged
against dockerd and against podman's Docker API (``infra/docker/engine.sh``).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from dojoflow.infra.sandbox.base import ExecutionRequest, ExecutionResult
from dojoflow.infra.sandbox.capture import BoundedStream, captured_result
from dojoflow.infra.sandbox.cgroups import read_counter
from dojoflow.infra.sandbox.process import STREAM_JOIN_S, sandbox_environment, wait_or_stop
from dojoflow.infra.sandbox.workspace import (
    DATA_DIR,
    SANDBOX_WORKSPACE,
    check_mounted_workspace,
    prepare_mounted_workspace,
    resolved,
    step_uid,
)

DEFAULT_IMAGE = "dojoflow-sandbox:latest"
DEFAULT_GPU_IMAGE = "dojoflow-sandbox-cuda:latest"
LABEL = "dojoflow"
LABEL_VALUE = "sandbox"
EPISODE_LABEL = "dojoflow.episode"
CONTAINER_PATH = "/usr/local/bin:/usr/bin:/bin"
BUILD_COMMANDS = {
    DEFAULT_IMAGE: "docker build -t dojoflow-sandbox -f infra/docker/Dockerfile .",
    DEFAULT_GPU_IMAGE: "docker build -t dojoflow-sandbox-cuda -f infra/docker/Dockerfile.cuda .",
}
MB = 1024 * 1024


CLONE_NEWUSER = 0x10000000
ENOSYS, EPERM = 38, 1


def userns_seccomp_profile() -> dict[str, Any]:
    """The container's seccomp profile: new user namespaces refused, as the bwrap backend's filter does
    (``seccomp.py``: inside one, code could mount a tmpfs of its own). podman's default profile allows
    ``unshare(CLONE_NEWUSER)``; dockerd's refuses it only without CAP_SYS_ADMIN. Everything else is allowed:
    the container has no capabilities, so mounts, module loading, raw I/O... fail regardless."""
    arches = {"x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
              "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]}.get(os.uname().machine, [])
    flag = {"index": 0, "value": CLONE_NEWUSER, "valueTwo": CLONE_NEWUSER, "op": "SCMP_CMP_MASKED_EQ"}
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": arches, "syscalls": [
        {"names": ["unshare", "clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM, "args": [flag]},
        # clone3's flags sit in a struct a filter cannot read: ENOSYS makes the C library fall back to clone
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
    ]}


def _seccomp_option(podman: bool) -> str:
    """``seccomp=...`` for ``security_opt``: dockerd takes the profile's JSON, podman's Docker API a path."""
    import hashlib
    import json
    import tempfile

    text = json.dumps(userns_seccomp_profile(), sort_keys=True)
    if not podman:
        return f"seccomp={text}"
    path = Path(tempfile.gettempdir()) / f"dojoflow-seccomp-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return f"seccomp={path}"


def _is_podman(client: Any) -> bool:
    try:
        components = client.version().get("Components") or []
    except Exception:
        return False
    return any("podman" in str(c.get("Name", "")).lower() for c in components)


def _docker():
    import docker  # lazily: the SDK is only needed by this backend

    return docker


def docker_available(client: Any = None) -> tuple[bool, str]:
    """Whether a Docker engine answers a ping, with the reason when it does not."""
    try:
        docker = _docker()
    except ImportError:
        return False, "the docker SDK is not installed (pip install docker)"
    own = client is None
    try:
        if own:
            client = docker.from_env(timeout=10)
        client.ping()
        version = client.version().get("Version", "?") if hasattr(client, "version") else "?"
        return True, f"Docker engine {version} answers"
    except Exception as exc:  # DockerException, requests' ConnectionError, a missing socket...
        return False, f"no Docker engine answers a ping ({type(exc).__name__}: {exc})"
    finally:
        if own and client is not None:
            try:
                client.close()
            except Exception:
                pass


def cleanup(label: str = f"{LABEL}={LABEL_VALUE}", client: Any = None) -> list[str]:
    """Force-remove every container (running or not) carrying ``label`` (``key=value`` or ``key``).
    Returns the ids removed. E.g. ``cleanup("dojoflow.episode=<id>")`` for one episode's leftovers."""
    client = client if client is not None else _docker().from_env(timeout=60)
    removed = []
    for container in client.containers.list(all=True, filters={"label": label}):
        try:
            container.remove(force=True, v=True)
            removed.append(container.id)
        except Exception as exc:
            if type(exc).__name__ != "NotFound":
                raise
    return removed


class _LogReader:
    """A file-like view of one of a container's output streams for :class:`BoundedStream`.

    It attaches to the container before it starts (as ``docker run`` does, so a short step loses nothing)
    rather than following its logs: podman's Docker API marks a container "exited" while it still runs once a
    ``logs?follow`` stream is open, and then refuses to kill it at the deadline. The attach stream has no read
    timeout (docker-py lifts it); should it fail while the code runs, it is reopened without the replay (output
    written in between can be lost, none is repeated) until the step is over."""

    def __init__(self, container: Any, stdout: bool, finished: threading.Event) -> None:
        self._container, self._stdout, self._finished = container, stdout, finished
        self._stream: Any = None
        self._it: Any = None
        self._reopened = 0
        self._open(replay=True)

    def _open(self, replay: bool) -> None:
        self._stream = self._container.attach(stdout=self._stdout, stderr=not self._stdout, stream=True, logs=replay)
        self._it = iter(self._stream)

    def read(self, _n: int = -1) -> bytes:
        while True:
            try:
                return next(self._it)
            except StopIteration:
                return b""
            except Exception:
                if self._finished.is_set() or self._reopened >= 1000:
                    return b""
                self._reopened += 1
                try:
                    self._open(replay=False)
                except Exception:
                    return b""

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                pass


class _Stats:
    """CPU time and peak memory of a running container, from the engine's one-shot stats (the cgroup's
    counters): a thread samples until :meth:`stop`. The CPU time is the last sample (a counter); the peak
    memory the largest sample, less the inactive page cache as ``docker stats`` reports it."""

    def __init__(self, container: Any, interval_s: float) -> None:
        self._container, self._interval = container, interval_s
        self.cpu_s = 0.0
        self.peak_memory_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _read(self) -> bool:
        try:
            stats = self._container.stats(stream=False, one_shot=True)
        except Exception:  # the container is gone (its stats with it), or the engine has no stats for it
            return False
        if not isinstance(stats, dict):
            return False
        cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        memory = stats.get("memory_stats") or {}
        if not cpu and not memory.get("usage"):
            return True  # not started yet, or already stopped: an empty sample
        self.cpu_s = max(self.cpu_s, (cpu or 0) / 1e9)
        detail = memory.get("stats") or {}
        cache = detail.get("total_inactive_file", detail.get("inactive_file", 0)) or 0
        used = max(memory.get("max_usage") or 0, memory.get("usage") or 0) - cache
        self.peak_memory_mb = max(self.peak_memory_mb, used / MB)
        return True

    def _sample(self) -> None:
        while not self._stop.is_set() and self._read():
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _safe_name(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", text)[:80].strip("-.") or "step"


def host_oom_kills() -> int | None:
    """The kernel's count of OOM kills since boot (``oom_kill`` in /proc/vmstat), None where it cannot be read.

    podman on cgroup v1 does not report ``OOMKilled``, and the memory a container used at its end can fall
    between two stats samples (a fast allocation is killed within one interval); the kernel's own counter
    says whether an OOM kill happened while the step ran, whatever the sampling saw."""
    return read_counter(Path("/proc/vmstat"), "oom_kill")


def _engine_is_local(client: Any) -> bool:
    """Whether the engine runs on this machine (a unix socket), so that this kernel's counters are its own."""
    base_url = str(getattr(getattr(client, "api", None), "base_url", ""))
    return base_url.startswith("http+docker://")


class DockerBackend:
    """A container per step; see the module docstring for what the container gets and why."""

    name = "docker"
    isolated = True

    def __init__(self, image: str | None = None, gpu_image: str | None = None, cpus: float | None = None,
                 client: Any = None, python: str = "python", nofile: int = 1024, episode: str | None = None,
                 poll_s: float = 0.05, stats_interval_s: float = 0.1) -> None:
        """``client``: a docker SDK client (default ``docker.from_env()``, made on first use); tests pass a
        fake. ``python``: the interpreter inside the image, substituted for the host interpreter in
        ``request.command``. ``episode``: the episode label (default: the workspace's parent directory name,
        which is the episode id for ``MLEEnvironment`` workspaces). ``stats_interval_s``: how often the engine's
        stats are sampled for ``cpu_s`` and ``peak_memory_mb`` (one request each, ~30 ms of engine work)."""
        self.image = image or os.environ.get("DOJOFLOW_DOCKER_IMAGE") or DEFAULT_IMAGE
        self.gpu_image = gpu_image or os.environ.get("DOJOFLOW_DOCKER_GPU_IMAGE") or DEFAULT_GPU_IMAGE
        self.cpus = float(cpus if cpus is not None else os.environ.get("DOJOFLOW_DOCKER_CPUS", "1"))
        self.python = python
        self.nofile = nofile
        self.episode = episode
        self.poll_s = poll_s
        self.stats_interval_s = stats_interval_s
        self._client = client
        self._pinged = False
        self._podman = False  # podman's Docker API (takes a seccomp profile by path): found at the ping

    # -- the engine ---------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the engine connection (a later step opens a new one)."""
        client, self._client, self._pinged = self._client, None, False
        close = getattr(client, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

    def client(self) -> Any:
        """The docker SDK client (``docker.from_env()`` on first use, unless one was given)."""
        if self._client is None:
            self._client = _docker().from_env(timeout=120)
        return self._client

    def _engine_error(self) -> str | None:
        """None when the engine answers (pinged once per backend), else a message for the result."""
        if self._pinged:
            return None
        try:
            self.client().ping()
            self._podman = _is_podman(self.client())
        except ImportError:
            return "the docker SDK is not installed (pip install docker)"
        except Exception as exc:
            return (f"no Docker engine answers a ping ({type(exc).__name__}: {exc}); start dockerd or choose "
                    "another backend (DOJOFLOW_SANDBOX=bwrap or local)")
        self._pinged = True
        return None

    # -- the request ----------------------------------------------------------------------------------------
    def image_for(self, request: ExecutionRequest) -> str:
        """The image a step runs in: the CUDA image when it has a GPU."""
        return self.gpu_image if request.gpu is not None else self.image

    def container_command(self, request: ExecutionRequest) -> list[str]:
        """The step's command with the host interpreter replaced by the image's."""
        command = list(request.command)
        if command and (command[0] in (sys.executable, os.path.realpath(sys.executable))
                        or (os.path.isabs(command[0]) and Path(command[0]).name.startswith("python"))):
            command[0] = self.python
        return command

    def user_for(self, request: ExecutionRequest) -> str:
        """The container's ``uid:gid``: the per-workspace sandbox uid when the harness is root."""
        uid = step_uid(request)
        return f"{uid}:{uid}" if uid is not None else f"{os.getuid()}:{os.getgid()}"

    def environment(self, request: ExecutionRequest) -> dict[str, str]:
        """The step's clean environment, adapted to the image (PATH, user names, the GPU as device 0)."""
        env = sandbox_environment(request, request.workspace_inside or SANDBOX_WORKSPACE)
        if "PATH" not in request.extra_env:
            env["PATH"] = CONTAINER_PATH  # the host venv's bin directory does not exist in the image
        for key in ("USER", "LOGNAME"):  # the uid has no passwd entry in the image; getpass.getuser() reads these
            env.setdefault(key, "agent")
        if request.gpu is not None and "CUDA_VISIBLE_DEVICES" not in request.extra_env:
            env["CUDA_VISIBLE_DEVICES"] = "0"  # the device request exposes only that GPU, as device 0
        return env

    def episode_for(self, request: ExecutionRequest) -> str:
        """The episode label of a step's container."""
        return self.episode or Path(request.workspace).parent.name or "unknown"

    def create_kwargs(self, request: ExecutionRequest) -> dict[str, Any]:
        """Everything passed to ``client.containers.create`` for this (resolved) request."""
        docker = _docker()
        limits = request.limits
        tmp_mb = max(16, min(limits.memory_mb, limits.max_file_mb))
        workspace = request.workspace_inside or SANDBOX_WORKSPACE
        volumes = {str(request.workspace): {"bind": workspace, "mode": "rw"}}
        if request.public_dir is not None:
            volumes[str(request.public_dir)] = {"bind": f"{workspace}/{DATA_DIR}", "mode": "ro"}
        for mount in request.mounts:  # the root filesystem is read-only, so ``sealed`` folders need nothing more
            volumes[str(Path(mount.host).resolve())] = {"bind": mount.inside, "mode": "rw" if mount.writable else "ro"}
        episode = self.episode_for(request)
        kwargs: dict[str, Any] = dict(
            image=self.image_for(request),
            command=self.container_command(request),
            name=f"dojoflow-{_safe_name(episode)}-{uuid.uuid4().hex[:8]}",
            working_dir=workspace,
            volumes=volumes,
            environment=self.environment(request),
            user=self.user_for(request),
            hostname="sandbox",
            network_mode="none",
            ipc_mode="private",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={tmp_mb}m"},
            shm_size=f"{tmp_mb}m",
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(self.cpus * 1e9),
            pids_limit=limits.max_processes,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges", _seccomp_option(self._podman)],
            ulimits=[
                docker.types.Ulimit(name="nofile", soft=self.nofile, hard=self.nofile),
                docker.types.Ulimit(name="fsize", soft=limits.max_file_mb * MB, hard=limits.max_file_mb * MB),
                docker.types.Ulimit(name="cpu", soft=limits.cpu_seconds, hard=limits.cpu_seconds + 5),
                docker.types.Ulimit(name="core", soft=0, hard=0),
                # podman replaces its configured default ulimits by the ones given and sets the others (nproc)
                # to its own maximum, which fails past the engine's hard limit ("setrlimit: Operation not
                # permitted"): so nproc is always given, and nofile defaults to the usual 1024
                docker.types.Ulimit(name="nproc", soft=limits.max_processes, hard=limits.max_processes),
            ],
            labels={LABEL: LABEL_VALUE, EPISODE_LABEL: episode},
            stdin_open=False,
            tty=False,
            detach=True,
        )
        if request.gpu is not None:
            kwargs["device_requests"] = [docker.types.DeviceRequest(device_ids=[str(request.gpu)],
                                                                    capabilities=[["gpu"]])]
        return kwargs

    # -- running --------------------------------------------------------------------------------------------
    def _error(self, message: str, duration: float = 0.0) -> ExecutionResult:
        return ExecutionResult.not_started(self.name, self.isolated, message, duration)

    def _missing_image(self, image: str) -> str:
        build = BUILD_COMMANDS.get(image, f"docker build -t {image.split(':')[0]} -f infra/docker/Dockerfile .")
        return (f"the Docker image '{image}' is not present on this engine (images are never pulled "
                f"automatically); build it from the repository root with: {build}")

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        """One container for the step: created, started, waited for (wall clock enforced here), removed."""
        request = resolved(request)
        message = self._engine_error()
        if message is not None:
            return self._error(message)
        docker = _docker()
        uid = step_uid(request)
        try:
            prepare_mounted_workspace(request, uid)
            kwargs = self.create_kwargs(request)
        except OSError as exc:
            return self._error(f"{type(exc).__name__}: {exc}")
        image = kwargs["image"]
        container = None
        start = time.monotonic()
        try:
            try:
                container = self.client().containers.create(**kwargs)
            except docker.errors.ImageNotFound:
                return self._error(self._missing_image(image))
            result = self._run_container(container, request, start)
        except docker.errors.ImageNotFound:
            return self._error(self._missing_image(image), time.monotonic() - start)
        except Exception as exc:  # the engine failed us: report it as the harness's error, not the code's
            return self._error(f"the Docker engine failed: {type(exc).__name__}: {exc}", time.monotonic() - start)
        finally:
            if container is not None:
                self._remove(container)
        problem = check_mounted_workspace(request, uid)
        if problem:
            result.error = problem
        return result

    @staticmethod
    def _remove(container: Any) -> None:
        try:
            container.remove(force=True, v=True)
        except Exception as exc:
            if type(exc).__name__ != "NotFound":
                import logging

                logging.getLogger(__name__).warning("could not remove sandbox container %s: %s",
                                                    getattr(container, "id", "?"), exc)

    def _run_container(self, container: Any, request: ExecutionRequest, start: float) -> ExecutionResult:
        limits = request.limits
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            try:
                container.kill()
            except Exception:
                pass  # already stopped

        finished = threading.Event()
        # attached before the start, so that nothing a short step writes is missed (as `docker run` does)
        out_reader, err_reader = _LogReader(container, True, finished), _LogReader(container, False, finished)
        oom_kills_before = host_oom_kills() if _engine_is_local(self.client()) else None
        container.start()
        start = time.monotonic()
        stats = _Stats(container, self.stats_interval_s)
        out = BoundedStream(out_reader, limits.keep_output_bytes, limits.max_output_bytes, kill)
        err = BoundedStream(err_reader, limits.keep_output_bytes, limits.max_output_bytes, kill)
        waited: dict[str, Any] = {}

        def wait() -> None:
            try:
                waited["status"] = container.wait()
            except Exception as exc:
                waited["error"] = exc

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        # container.wait(timeout=) is an HTTP timeout, not a job limit
        stop_reason = wait_or_stop(waiter, start + limits.timeout_s, request.stop_when)
        timed_out = waiter.is_alive() and stop_reason is None
        if waiter.is_alive():
            kill()
            waiter.join(30)
        duration = time.monotonic() - start
        stats.stop()
        finished.set()
        out.join(STREAM_JOIN_S)
        err.join(STREAM_JOIN_S)
        if "error" in waited and not (timed_out or stop_reason):
            raise waited["error"]
        status = waited.get("status") or {}
        exit_code = status.get("StatusCode") if isinstance(status, dict) else None
        oom_killed = False
        try:
            container.reload()
            state = (container.attrs or {}).get("State", {})
            oom_killed = bool(state.get("OOMKilled"))
            if exit_code is None:
                exit_code = state.get("ExitCode")
        except Exception:
            pass
        if not oom_killed and exit_code == 137 and not killed.is_set():
            # podman (cgroup v1, conmon) does not report OOMKilled: a SIGKILL the harness did not send is the
            # kernel's OOM killer when this host's kernel counted an OOM kill meanwhile (a local engine), or
            # when the sampled memory reached half the limit or more
            counted = oom_kills_before is not None and (host_oom_kills() or 0) > oom_kills_before
            oom_killed = counted or stats.peak_memory_mb >= 0.5 * limits.memory_mb
        result = captured_result(out, err, exit_code=exit_code, timed_out=timed_out, duration_s=duration,
                                 cpu_s=stats.cpu_s, peak_memory_mb=stats.peak_memory_mb, backend=self.name,
                                 isolated=self.isolated, oom_killed=oom_killed)
        result.stop_reason = stop_reason
        return result
