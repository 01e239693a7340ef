"""Starting a step's process: its command, a clean environment, rlimits, a wall-clock kill, bounded output.

:func:`run_limited` is the one place a cold step's process is started and waited for; the ``local`` backend
runs the command directly, ``bwrap`` runs bubblewrap around it (rlimits set before ``exec`` are inherited
by everything inside).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dojoflow.infra.gpu import GpuMemorySampler
from dojoflow.infra.sandbox.base import ExecutionLimits, ExecutionRequest, ExecutionResult
from dojoflow.infra.sandbox.capture import BoundedStream, captured_result
from dojoflow.infra.sandbox.cgroups import StepCgroup
from dojoflow.infra.sandbox.inside import rlimits

STREAM_JOIN_S = 5.0  # how long to wait for the output readers after the process ended


def python_command(script: str) -> tuple[str, ...]:
    """The interpreter that runs agent code: the one dojoflow runs in, so its libraries are available."""
    return (sys.executable, "-u", script)


def is_python_script(command: tuple[str, ...] | list[str]) -> tuple[str, list[str]] | None:
    """``(script, args)`` for ``<this python> [-u] script [args]`` with a relative script inside the
    workspace; None for any other command."""
    command = list(command)
    if not command:
        return None
    exe = command[0]
    if exe != sys.executable and os.path.realpath(exe) != os.path.realpath(sys.executable):
        return None
    rest = command[1:]
    while rest and rest[0] == "-u":
        rest = rest[1:]
    if not rest or rest[0].startswith("-") or os.path.isabs(rest[0]) or ".." in Path(rest[0]).parts:
        return None
    return rest[0], rest[1:]


def sandbox_environment(request: ExecutionRequest, home: str) -> dict[str, str]:
    """A clean environment: nothing from the host (no secrets), single-threaded math libraries."""
    python_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": f"{home}/tmp",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "" if request.gpu is None else str(request.gpu),
    }
    env.update(request.extra_env)
    return env


def limit_preexec(limits: ExecutionLimits, group: StepCgroup | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` applying the step's rlimits, and joining its cgroup, between fork and exec."""
    values = limits.rlimits()

    def preexec() -> None:
        if group is not None:
            group.join_self()
        rlimits.apply(values)
    return preexec


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by ``pid``, and ``pid`` itself (for a leader that left its group)."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run_limited(argv: list[str], request: ExecutionRequest, env: dict[str, str], backend: str,
                isolated: bool) -> ExecutionResult:
    """Run ``argv`` with the request's limits in its own session; nothing it starts outlives it."""
    limits = request.limits
    group = StepCgroup.create(limits.memory_mb, limits.max_processes)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=request.workspace, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=limit_preexec(limits, group))
    except (OSError, subprocess.SubprocessError) as exc:
        if group is not None:
            group.remove()
        return ExecutionResult.not_started(backend, isolated, f"{type(exc).__name__}: {exc}")

    def kill() -> None:  # the child leads its own process group
        kill_group(proc.pid)

    out = BoundedStream(proc.stdout, limits.keep_output_bytes, limits.max_output_bytes, kill)
    err = BoundedStream(proc.stderr, limits.keep_output_bytes, limits.max_output_bytes, kill)
    waited: dict = {}
    waiter = threading.Thread(target=lambda: waited.update(zip(("pid", "status", "rusage"), os.wait4(proc.pid, 0))),
                              daemon=True)
    sampler = GpuMemorySampler(request.gpu) if request.gpu is not None else contextlib.nullcontext()
    stop_reason: str | None = None
    try:
        with sampler:
            waiter.start()
            stop_reason = wait_or_stop(waiter, start + limits.timeout_s, request.stop_when)
            timed_out = waiter.is_alive() and stop_reason is None
            if waiter.is_alive():
                kill()
                waiter.join()
    except BaseException:  # SIGINT/SIGTERM while waiting (a long agent run): the sandbox goes down with us
        kill()
        if group is not None:
            group.kill_all()
        raise
    duration = time.monotonic() - start
    kill()  # nothing left in the step's process group outlives it
    proc.returncode = os.waitstatus_to_exitcode(waited["status"])
    out.join(STREAM_JOIN_S)
    err.join(STREAM_JOIN_S)
    rusage = waited["rusage"]
    cpu_s, peak_mb, oom_killed = rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss / 1024, False
    if group is not None:  # the whole tree's usage, from its cgroup; then nothing of the step survives
        group.kill_all()
        usage = group.usage()
        cpu_s, peak_mb, oom_killed = usage.cpu_s, usage.peak_memory_mb, usage.oom_kills > 0
        group.remove()
    result = captured_result(out, err, exit_code=proc.returncode, timed_out=timed_out, duration_s=duration,
                             cpu_s=cpu_s, peak_memory_mb=peak_mb, backend=backend, isolated=isolated,
                             oom_killed=oom_killed)
    result.gpu_peak_memory_mb = getattr(sampler, "peak_mb", None)
    result.stop_reason = stop_reason
    return result


STOP_POLL_S = 0.25


def wait_or_stop(waiter: threading.Thread, deadline: float, stop_when: Callable[[], str | None] | None) -> str | None:
    """Wait for ``waiter`` until ``deadline``; with ``stop_when``, poll it meanwhile and return its reason as
    soon as it gives one (None: the process ended or the deadline passed)."""
    if stop_when is None:
        waiter.join(max(0.0, deadline - time.monotonic()))
        return None
    while waiter.is_alive() and time.monotonic() < deadline:
        reason = stop_when()
        if reason:
            return reason
        waiter.join(min(STOP_POLL_S, max(0.0, deadline - time.monotonic())))
    return None
