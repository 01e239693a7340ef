"""The sandbox contract: what a step asks for (:class:`ExecutionRequest`), what it reports
(:class:`ExecutionResult`), and the protocols a backend implements.

Every backend implements :class:`SandboxBackend`. A backend that can also keep one long-lived process
inside its isolation implements :class:`ProcessHost`, which is all the warm mode (``warm.py``) needs to
compose it: ``WarmBackend(get_backend("bwrap"))``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

MB = 1024 * 1024
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MEMORY_MB = 4096
CPU_CORES_PER_STEP = 2  # the default CPU-time limit allows this many busy cores for the whole wall time
CPU_GRACE_S = 5


@dataclass(frozen=True)
class ExecutionLimits:
    """Per-step limits. Output beyond ``max_output_bytes`` stops the step (as Kaggle caps notebook logs)."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    cpu_s: int | None = None  # default: timeout x CPU_CORES_PER_STEP + CPU_GRACE_S
    max_output_bytes: int = 8 * MB
    max_file_mb: int = 1024
    max_processes: int = 256
    keep_output_bytes: int = 64 * 1024  # head + tail kept of each stream for the observation

    @property
    def cpu_seconds(self) -> int:
        """The CPU-time limit in seconds (explicit, or derived from the wall-clock limit)."""
        return self.cpu_s if self.cpu_s is not None else int(self.timeout_s * CPU_CORES_PER_STEP + CPU_GRACE_S)

    def rlimits(self) -> dict[str, int]:
        """The values :func:`dojoflow.infra.sandbox.inside.rlimits.apply` takes (a plain dict: the warm worker
        receives it as JSON)."""
        return {"memory_mb": self.memory_mb, "cpu_s": self.cpu_seconds, "max_file_mb": self.max_file_mb,
                "max_processes": self.max_processes}


@dataclass(frozen=True)
class Mount:
    """A host file or folder an isolated backend binds at ``inside`` (read-only unless ``writable``).

    Writable mounts are treated like the workspace: handed to the sandbox uid before the run and checked
    after it (symlinks leading out removed, special files removed).
    """

    host: Path
    inside: str
    writable: bool = False


@dataclass(frozen=True)
class ExecutionRequest:
    """What to run and where. ``public_dir`` is exposed read-only as ``data/`` inside the workspace.

    ``hidden``: host folders an isolated backend must not expose even where they lie inside what it binds
    (the installed data folders that hold tasks' source datasets; see ``tasks_catalog/exposure.py``).

    For a whole-episode program (a command agent, ``agents/external/``) the layout can differ from a step's:
    ``workspace_inside`` is where the workspace appears (default ``/workspace``; it is also ``HOME`` and
    the working directory), ``mounts`` are further binds, ``sealed`` are folders created empty and made
    read-only once the mounts under them are in place (so only those mounts are writable there), and
    ``stop_when`` is polled while the command runs: a non-empty string stops it, and becomes the result's
    ``stop_reason``.
    """

    command: tuple[str, ...]
    workspace: Path
    public_dir: Path | None = None
    limits: ExecutionLimits = ExecutionLimits()
    gpu: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    hidden: tuple[Path, ...] = ()
    workspace_inside: str | None = None
    mounts: tuple[Mount, ...] = ()
    sealed: tuple[str, ...] = ()
    stop_when: Callable[[], str | None] | None = field(default=None, compare=False, repr=False)


@dataclass
class ExecutionResult:
    """What happened. ``stdout``/``stderr`` hold head and tail when the streams were longer than kept."""

    exit_code: int | None
    timed_out: bool
    oom: bool
    output_limited: bool
    duration_s: float
    cpu_s: float
    peak_memory_mb: float
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int
    backend: str
    isolated: bool
    error: str | None = None  # the harness could not start the command at all
    gpu_peak_memory_mb: float | None = None  # where a GPU was assigned and nvidia-smi answers
    startup_s: float = 0.0  # spent before the code ran, starting the backend's environment (a warm worker)
    stop_reason: str | None = None  # the request's ``stop_when`` stopped the command, and why
    access: dict | None = None  # what the audit hook saw the code attempt (``access.py``); None: not audited

    @classmethod
    def not_started(cls, backend: str, isolated: bool, error: str, duration_s: float = 0.0) -> ExecutionResult:
        """The result of a step the harness could not start (nothing ran)."""
        return cls(None, False, False, False, round(duration_s, 4), 0.0, 0.0, "", "", 0, 0, backend, isolated,
                   error=error)

    @property
    def ok(self) -> bool:
        """The code ran to the end and exited 0 within every limit."""
        return self.exit_code == 0 and not (self.timed_out or self.oom or self.output_limited or self.error
                                            or self.stop_reason)

    def failure_message(self, limits: ExecutionLimits) -> str | None:
        """A one-line explanation of why the step failed, or None when it succeeded."""
        if self.error:
            return f"the sandbox could not run the code: {self.error}"
        if self.stop_reason:
            return f"stopped: {self.stop_reason}"
        if self.timed_out and self.oom:
            return (f"out of memory, then timed out: processes of the step were killed for exceeding the memory "
                    f"limit of {limits.memory_mb} MB (all processes together), and the rest ran past the step "
                    f"limit of {limits.timeout_s:g} s")
        if self.timed_out:
            return f"timed out: the code ran longer than the step limit of {limits.timeout_s:g} s and was killed"
        if self.output_limited:
            return (f"output limit exceeded: the code printed more than {limits.max_output_bytes // 1024} KiB "
                    "and was stopped; print less (e.g. summaries instead of whole frames)")
        if self.oom:
            return (f"out of memory: the code exceeded the memory limit of {limits.memory_mb} MB (all its "
                    "processes together)")
        if self.exit_code != 0:
            last = (self.stderr.strip().splitlines() or ["(no error output)"])[-1]
            return f"the code exited with status {self.exit_code}: {last}"
        return None

    def to_dict(self) -> dict:
        """All fields, for JSON and the trajectory."""
        return asdict(self)


@runtime_checkable
class SandboxBackend(Protocol):
    """A place to run untrusted code. ``isolated`` is False for backends that cannot hide files or network.

    ``run`` never raises for anything the code does: failures are reported in the result. ``close`` frees
    what the backend holds between steps (a warm worker, a client connection); it may be called twice.
    """

    name: str
    isolated: bool

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        """Run the request's command; report what happened (never raises for what the code does)."""

    def close(self) -> None:
        """Free what the backend holds between steps; a later ``run`` starts afresh."""


@dataclass(frozen=True)
class StepContext:
    """What a :class:`ProcessHost` worked out while preparing a step: the uid the code runs as (None: the
    harness's own)."""

    uid: int | None = None


@dataclass
class HostedProcess:
    """A long-lived process started inside a backend's isolation; ``cleanup`` removes its scratch files."""

    proc: subprocess.Popen
    cleanup: Callable[[], None] = lambda: None


@runtime_checkable
class ProcessHost(SandboxBackend, Protocol):
    """Optional hooks of a backend that can keep one long-lived process inside its isolation (warm mode).

    - ``pid_namespace``: every process started inside dies with the outermost one;
    - ``signal_exit_base``: a child killed by signal N is reported as ``base + N`` (None: as ``-N``), so a
      warm step reports exactly what a cold step of the same backend would;
    - ``workspace_inside``: the workspace's path as the code sees it;
    - ``prepare_step`` / ``check_step``: the per-step workspace preparation and the after-step check a cold
      run does (``check_step`` returns a problem that must fail the step, or None);
    - ``start_process``: run ``python <program> <args>`` inside, with ``pass_fds`` inherited.
    """

    pid_namespace: bool
    signal_exit_base: int | None

    def workspace_inside(self, request: ExecutionRequest) -> str:
        """The workspace's path as the code sees it."""

    def prepare_step(self, request: ExecutionRequest) -> StepContext:
        """Prepare the workspace for a step, as a cold run would."""

    def check_step(self, request: ExecutionRequest, context: StepContext) -> str | None:
        """After a step: None, or the problem with the workspace that must fail the step."""

    def start_process(self, request: ExecutionRequest, program: Path, args: Sequence[str],
                      pass_fds: Sequence[int], context: StepContext) -> HostedProcess:
        """Start ``python program args`` inside the isolation with ``pass_fds`` inherited."""
