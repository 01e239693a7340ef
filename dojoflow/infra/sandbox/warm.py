"""Warm interpreter mode: one long-lived sandboxed worker per episode; each step runs in a fresh fork of it.

``WarmBackend(inner)`` composes any backend that implements
:class:`~dojoflow.infra.sandbox.base.ProcessHost` (``bwrap`` and ``local`` do). On first use it starts ONE
worker process through the inner backend's own isolation (for ``bwrap``: the same options, namespaces,
read-only mounts, unprivileged uid and clean environment as a cold step; for ``local``: the same clean
environment). The worker, :mod:`dojoflow.infra.sandbox.inside.warm_worker`, imports the heavy libraries
once (numpy, pandas, scikit-learn and its common submodules) and then serves steps: each step is a fresh
fork of its pristine state, so module state never leaks between steps.

Limits are enforced as in a cold run: the worker kills the child's process group at the wall-clock
deadline; the harness keeps head and tail of the output
(:class:`~dojoflow.infra.sandbox.capture.BoundedStream`) and asks the worker to kill the child when the
output cap is passed; CPU time and peak memory come from ``wait4`` on the child. If the worker itself dies
or stops answering (e.g. the step killed its parent), the harness kills the whole sandbox, reports the step
as failed with a clear error, and starts a new worker for the next step. Commands that are not
``<this python> [-u] <script> [args]`` run cold through the inner backend.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from dojoflow.errors import UsageError, WorkerDied
from dojoflow.infra.sandbox.base import (
    ExecutionRequest,
    ExecutionResult,
    HostedProcess,
    ProcessHost,
    SandboxBackend,
    StepContext,
)
from dojoflow.infra.sandbox.capture import BoundedStream, captured_result
from dojoflow.infra.sandbox.cgroups import StepCgroup
from dojoflow.infra.sandbox.inside import warm_worker
from dojoflow.infra.sandbox.process import STREAM_JOIN_S, is_python_script, kill_group
from dojoflow.infra.sandbox.workspace import resolved

log = logging.getLogger(__name__)

DEFAULT_PRELOAD = (
    "numpy", "pandas", "scipy", "sklearn", "sklearn.base", "sklearn.utils", "sklearn.linear_model",
    "sklearn.ensemble", "sklearn.tree", "sklearn.model_selection", "sklearn.preprocessing", "sklearn.metrics",
    "sklearn.pipeline", "sklearn.impute", "sklearn.compose", "sklearn.decomposition", "sklearn.neighbors",
    "sklearn.svm",
)
WORKER_PROGRAM = Path(warm_worker.__file__)
WORKER_FD = 10  # the worker's end of the control socket is passed at this fd number or above
STARTUP_TIMEOUT_S = 120.0
GRACE_S = 10.0  # how long after the step deadline the harness waits for the worker before killing it
MAX_WORKER_AGE_S = 6 * 3600.0
WORKER_STDERR_KEEP = 16384
STOP_WAIT_S = 10.0
MIN_RECV_TIMEOUT_S = 0.01


@dataclasses.dataclass
class _Worker:
    """The harness's handle on one running worker."""

    hosted: HostedProcess
    sock: socket.socket
    key: tuple
    started: float
    pid_namespace: bool
    stderr: BoundedStream
    loaded: list = dataclasses.field(default_factory=list)
    failed: dict = dataclasses.field(default_factory=dict)
    send_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    steps: int = 0
    host_pid: int | None = None  # the worker as the host sees it (to find its children's host pids)

    @property
    def proc(self) -> subprocess.Popen:
        return self.hosted.proc

    def send(self, message: dict, fds: list[int] | None = None) -> None:
        data = json.dumps(message).encode()
        with self.send_lock:
            if fds:
                socket.send_fds(self.sock, [data], fds)
            else:
                self.sock.send(data)

    def recv(self, timeout: float | None) -> dict:
        self.sock.settimeout(timeout)
        data = self.sock.recv(warm_worker.MAX_MESSAGE)  # socket.timeout propagates
        if not data:
            raise WorkerDied("the worker closed its control socket")
        return json.loads(data)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        kill_group(self.proc.pid)
        try:
            self.proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            pass
        self.stderr.join(1)
        self.hosted.cleanup()


def _nspids(pid: int) -> list[int]:
    """The pids of host process ``pid`` in each PID namespace it is in, outermost first."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return [int(p) for p in line.split()[1:]]
    except (OSError, ValueError):
        return []
    return []


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def host_pid_of(root: int, ns_pid: int, max_depth: int = 6) -> int | None:
    """The host pid of the descendant of host process ``root`` that is ``ns_pid`` inside a nested PID
    namespace (a sandbox's process, as the worker reports it), or None."""
    level = [root]
    for _ in range(max_depth):
        level = [c for p in level for c in _children(p)]
        for pid in level:
            ids = _nspids(pid)
            if len(ids) > 1 and ids[-1] == ns_pid:
                return pid
        if not level:
            return None
    return None


def _host(inner: SandboxBackend) -> ProcessHost:
    if not isinstance(inner, ProcessHost):
        raise UsageError(f"the '{getattr(inner, 'name', inner)}' sandbox backend cannot host a warm worker (it "
                         "implements no ProcessHost hooks); use warm-bwrap or warm-local")
    return inner


class WarmBackend:
    """Runs each step in a fresh fork of one long-lived, pre-imported worker inside the inner sandbox."""

    def __init__(self, inner: SandboxBackend, preload: tuple[str, ...] = DEFAULT_PRELOAD,
                 max_worker_age_s: float = MAX_WORKER_AGE_S, max_steps_per_worker: int | None = None,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S, grace_s: float = GRACE_S) -> None:
        """``inner``: a backend implementing ``ProcessHost`` (``get_backend("bwrap")``). ``preload``: modules the worker
        imports once. The worker is replaced after ``max_worker_age_s`` or ``max_steps_per_worker`` steps, when
        the workspace, public data, GPU, extra environment or memory/file limits change, and when it dies.
        ``grace_s``: how long past a step's deadline the harness waits for the worker (e.g. one the step
        stopped with SIGSTOP) before killing the whole sandbox."""
        self.inner = _host(inner)
        self.name = f"warm-{self.inner.name}"
        self.isolated = self.inner.isolated
        self.preload = tuple(preload)
        self.max_worker_age_s = max_worker_age_s
        self.max_steps_per_worker = max_steps_per_worker
        self.startup_timeout_s = startup_timeout_s
        self.grace_s = grace_s
        self._worker: _Worker | None = None
        self._lock = threading.Lock()
        self.workers_started = 0

    # -- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> WarmBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to report to
            pass

    def close(self) -> None:
        """Stop the worker (and its sandbox). A later step starts a new one."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    # -- helpers --------------------------------------------------------------------------------------------
    @staticmethod
    def _key(request: ExecutionRequest) -> tuple:
        lim = request.limits
        return (str(request.workspace), str(request.public_dir), request.gpu,
                tuple(sorted(request.extra_env.items())), lim.memory_mb, lim.max_file_mb)

    def _start(self, request: ExecutionRequest, context: StepContext) -> _Worker:
        """Start the worker through the inner backend's isolation and wait until it has imported."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fd = fcntl.fcntl(theirs.fileno(), fcntl.F_DUPFD, WORKER_FD)  # clear of the bwrap launcher's fds 3 and 4
        theirs.close()
        args = [str(fd), "1" if self.inner.pid_namespace else "0", self.inner.workspace_inside(request),
                json.dumps(self.preload)]
        try:
            hosted = self.inner.start_process(request, WORKER_PROGRAM, args, [fd], context)
        except BaseException:
            ours.close()
            raise
        finally:
            os.close(fd)
        errors = BoundedStream(hosted.proc.stderr, WORKER_STDERR_KEEP, 1 << 30, lambda: None)
        worker = _Worker(hosted, ours, self._key(request), time.monotonic(), self.inner.pid_namespace, errors)
        try:
            ready = worker.recv(self.startup_timeout_s)
        except (OSError, WorkerDied, ValueError) as exc:
            worker.stop()
            detail = errors.text().strip().splitlines()
            raise WorkerDied(f"the warm worker did not start ({type(exc).__name__}: {exc}); "
                             f"{detail[-1] if detail else 'no error output'}") from None
        worker.loaded, worker.failed = ready.get("loaded", []), ready.get("failed", {})
        worker.host_pid = (host_pid_of(hosted.proc.pid, int(ready.get("pid", 0))) if worker.pid_namespace
                           else int(ready.get("pid", 0))) or None
        if worker.failed:
            log.warning("warm worker could not preload %s", worker.failed)
        self.workers_started += 1
        return worker

    def _worker_for(self, request: ExecutionRequest, context: StepContext) -> _Worker:
        w = self._worker
        if w is not None and (not w.alive() or w.key != self._key(request)
                              or time.monotonic() - w.started > self.max_worker_age_s
                              or (self.max_steps_per_worker is not None and w.steps >= self.max_steps_per_worker)):
            self.close()
            w = None
        if w is None:
            w = self._worker = self._start(request, context)
        return w

    # -- running --------------------------------------------------------------------------------------------
    def run(self, request: ExecutionRequest) -> ExecutionResult:
        """Run a Python-script step in a fork of the worker (anything else cold, through the inner backend)."""
        request = resolved(request)
        parsed = is_python_script(request.command)
        if parsed is None:
            return self.inner.run(request)
        with self._lock:
            try:
                context = self.inner.prepare_step(request)
            except OSError as exc:
                return ExecutionResult.not_started(self.name, self.isolated, f"{type(exc).__name__}: {exc}")
            started = self.workers_started
            startup = time.monotonic()
            try:
                worker = self._worker_for(request, context)
            except (OSError, WorkerDied) as exc:
                log.warning("warm sandbox unavailable (%s); running the step cold", exc)
                self.close()
                return self.inner.run(request)
            startup_s = time.monotonic() - startup if self.workers_started != started else 0.0
            result = self._run_step(worker, request, *parsed)
            result.startup_s = round(startup_s, 4)
            problem = self.inner.check_step(request, context)
            if problem and not result.error:
                result.error = problem
            return result

    def _run_step(self, worker: _Worker, request: ExecutionRequest, script: str, args: list[str]) -> ExecutionResult:
        limits = request.limits
        worker.steps += 1
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        start = time.monotonic()
        child_pid: list[int] = []

        def stop_step() -> None:
            try:
                worker.send({"op": "kill"})
            except OSError:
                pass

        out = BoundedStream(open(out_r, "rb", buffering=0), limits.keep_output_bytes, limits.max_output_bytes,
                            stop_step)
        err = BoundedStream(open(err_r, "rb", buffering=0), limits.keep_output_bytes, limits.max_output_bytes,
                            stop_step)
        group = StepCgroup.create(limits.memory_mb, limits.max_processes) if worker.host_pid else None
        message = {"op": "run", "script": script, "args": args, "timeout_s": limits.timeout_s,
                   "limits": limits.rlimits(), "hold": group is not None}
        done: dict[str, Any] | None = None
        failure: str | None = None
        timed_out = False
        try:
            try:
                worker.send(message, [out_w, err_w])
            finally:
                os.close(out_w)
                os.close(err_w)
            deadline = start + limits.timeout_s + self.grace_s
            while done is None:
                reply = worker.recv(max(MIN_RECV_TIMEOUT_S, deadline - time.monotonic()))
                if reply.get("op") == "started":
                    child_pid.append(int(reply.get("pid", 0)))
                    if group is not None:  # move the held child into the step's cgroup, then release it
                        self._join(group, worker, child_pid[-1])
                        worker.send({"op": "go"})
                elif reply.get("op") == "done":
                    done = reply
        except TimeoutError:
            timed_out = time.monotonic() - start >= limits.timeout_s
            failure = (f"the warm worker did not answer within {limits.timeout_s + self.grace_s:g} s; it was killed "
                       "and will be restarted for the next step")
        except (OSError, WorkerDied, ValueError) as exc:
            failure = (f"the warm worker died during the step ({type(exc).__name__}: {exc}; the code may have "
                       "killed it); it will be restarted for the next step")
        duration = time.monotonic() - start
        if done is None:  # tear the whole sandbox down; the next step starts a fresh worker
            if not worker.pid_namespace:
                for pid in child_pid:  # the step's processes are not inside a PID namespace that dies with it
                    if pid > 0:
                        kill_group(pid)
            self.close() if self._worker is worker else worker.stop()
        out.join(STREAM_JOIN_S)
        err.join(STREAM_JOIN_S)
        cpu_s = float((done or {}).get("cpu_s", 0.0))
        peak_mb = float((done or {}).get("maxrss_kb", 0)) / 1024
        oom_killed = False
        if group is not None:  # the whole tree's usage, from its cgroup
            group.kill_all()
            usage = group.usage()
            cpu_s, peak_mb, oom_killed = usage.cpu_s, usage.peak_memory_mb, usage.oom_kills > 0
            group.remove()
        if done is None:
            return captured_result(out, err, exit_code=None, timed_out=timed_out, duration_s=duration, cpu_s=cpu_s,
                                   peak_memory_mb=peak_mb, backend=self.name, isolated=self.isolated, error=failure,
                                   oom_killed=oom_killed)
        exit_code = int(done["status"])
        if exit_code < 0 and self.inner.signal_exit_base is not None:
            exit_code = self.inner.signal_exit_base - exit_code
        return captured_result(out, err, exit_code=exit_code, timed_out=bool(done.get("timed_out")),
                               duration_s=duration, cpu_s=cpu_s, peak_memory_mb=peak_mb, backend=self.name,
                               isolated=self.isolated, oom_killed=oom_killed)

    @staticmethod
    def _join(group: StepCgroup, worker: _Worker, child: int) -> None:
        """Move the worker's child (a pid in the worker's namespace) into ``group``."""
        host = host_pid_of(worker.host_pid or 0, child) if worker.pid_namespace else child
        if host:
            try:
                group.add(host)
                return
            except OSError as exc:
                log.warning("could not move the step into its cgroup (%s): per-process limits only", exc)
                return
        log.warning("could not find the step's host pid: per-process limits only")
