"""Per-process resource limits of one agent step (standard library only: it runs inside the sandbox too).

``apply(limits)`` takes the dict of :meth:`dojoflow.infra.sandbox.base.ExecutionLimits.rlimits` and is
called between fork and exec (cold steps) or in each forked child of the warm worker.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping

MB = 1024 * 1024
CPU_HARD_GRACE_S = 5  # SIGXCPU at the soft limit, SIGKILL this much later


def apply(limits: Mapping[str, int]) -> None:
    """Address space, CPU seconds, file size, process count; no core dumps."""
    memory = int(limits["memory_mb"]) * MB
    file_size = int(limits["max_file_mb"]) * MB
    cpu = int(limits["cpu_s"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + CPU_HARD_GRACE_S))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_NPROC, (int(limits["max_processes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def apply_file_size_only(max_file_mb: int) -> None:
    """What the warm worker itself runs under: a file-size cap and no core dumps (each step adds the rest)."""
    file_size = int(max_file_mb) * MB
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
