"""One cgroup per step: memory and process limits for the whole process tree, and the step's true usage.

Per-process rlimits let a step's processes each use the whole memory limit (6 x 700 MB under a 1 GB
limit), and the rusage of the launcher says nothing about the processes inside bubblewrap (a 38 s model fit
reported as 0.01 s of CPU). Where the harness may create cgroups (root, with the v1 ``memory``, ``pids``
and ``cpuacct`` controllers mounted, as on these machines; or cgroup v2 with those controllers delegated),
each step runs in a fresh cgroup under ``dojoflow/``:

- ``memory.limit_in_bytes`` (v2: ``memory.max``) is the step's memory limit for all its processes
  together, page cache and tmpfs pages included, and swap is not allowed past it;
- ``pids.max`` is the step's process limit for the whole tree;
- peak memory, CPU seconds and OOM kills are read back from the same cgroup, so the trajectory reports
  what the tree used.

The child joins its cgroup between fork and exec (cold steps) or before it runs the step's code (warm
steps: the harness moves the forked child in). Where cgroups cannot be used, :meth:`StepCgroup.create`
returns None with the reason logged once, and the per-process rlimits remain the only limits.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "dojoflow"
V1_CONTROLLERS = ("memory", "pids", "cpuacct")
REMOVE_ATTEMPTS = 50
REMOVE_PAUSE_S = (0.0005, 0.02)  # first and longest pause between attempts: exiting processes leave in ~1 ms


@dataclass(frozen=True)
class Usage:
    """What a step's process tree used."""

    peak_memory_mb: float
    cpu_s: float
    oom_kills: int


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _read_int(path: Path, default: int = 0) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def read_counter(path: Path, key: str) -> int | None:
    """The value of ``key`` in a kernel file of ``key value`` lines (``memory.events``, ``cpu.stat``,
    ``/proc/vmstat``), None where the file or the key cannot be read."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return None


@functools.lru_cache(maxsize=1)
def cgroup_support() -> tuple[str | None, str]:
    """(``"v1"``, ``"v2"`` or None, why): whether per-step cgroups can be made here (probed once)."""
    if os.geteuid() != 0:
        return None, "per-step cgroups need a root harness"
    if all((CGROUP_ROOT / c).is_dir() for c in V1_CONTROLLERS):
        try:
            for controller in V1_CONTROLLERS:
                (CGROUP_ROOT / controller / PARENT).mkdir(exist_ok=True)
            return "v1", "cgroup v1 memory, pids and cpuacct controllers"
        except OSError as exc:
            return None, f"cannot create cgroups: {exc}"
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if controllers.is_file():
        available = set(controllers.read_text().split())
        if not {"memory", "pids"} <= available:
            return None, f"cgroup v2 without the memory and pids controllers ({' '.join(sorted(available))})"
        try:
            parent = CGROUP_ROOT / PARENT
            parent.mkdir(exist_ok=True)
            _write(CGROUP_ROOT / "cgroup.subtree_control", "+memory +pids")
            _write(parent / "cgroup.subtree_control", "+memory +pids")
            return "v2", "cgroup v2 memory and pids controllers"
        except OSError as exc:
            return None, f"cannot delegate cgroup v2 controllers: {exc}"
    return None, "no cgroup hierarchy with memory and pids controllers is mounted"


@functools.lru_cache(maxsize=1)
def _warn_once(reason: str) -> None:
    log.warning("per-step cgroups unavailable (%s): memory and process limits are per process", reason)


class StepCgroup:
    """A cgroup for one step; see the module docstring."""

    def __init__(self, version: str, name: str) -> None:
        self.version, self.name = version, name
        if version == "v1":
            self.dirs = {c: CGROUP_ROOT / c / PARENT / name for c in V1_CONTROLLERS}
        else:
            self.dirs = {c: CGROUP_ROOT / PARENT / name for c in ("memory", "pids", "cpu")}

    @classmethod
    def create(cls, memory_mb: int, max_processes: int) -> StepCgroup | None:
        """A new cgroup with the limits set, or None where cgroups are unavailable."""
        version, reason = cgroup_support()
        if version is None:
            _warn_once(reason)
            return None
        group = cls(version, f"step-{os.getpid()}-{uuid.uuid4().hex[:12]}")
        limit = str(memory_mb * 1024 * 1024)
        try:
            for folder in set(group.dirs.values()):
                folder.mkdir()
            if version == "v1":
                _write(group.dirs["memory"] / "memory.limit_in_bytes", limit)
                swap = group.dirs["memory"] / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    _write(swap, limit)
                _write(group.dirs["pids"] / "pids.max", str(max_processes))
            else:
                _write(group.dirs["memory"] / "memory.max", limit)
                _write(group.dirs["memory"] / "memory.swap.max", "0")
                _write(group.dirs["pids"] / "pids.max", str(max_processes))
        except OSError as exc:
            group.remove()
            _warn_once(f"creating a step cgroup failed: {exc}")
            return None
        return group

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process is written to, to join (one per hierarchy)."""
        return sorted({str(folder / "cgroup.procs") for folder in self.dirs.values()})

    def join_self(self) -> None:
        """Move the calling process in (for ``preexec_fn``: between fork and exec)."""
        for path in self.procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, b"0")  # 0: the writing process itself
            finally:
                os.close(fd)

    def add(self, pid: int) -> None:
        """Move process ``pid`` (a host pid) in."""
        for path in self.procs_files:
            _write(Path(path), str(pid))

    def pids(self) -> list[int]:
        """The processes in the cgroup now."""
        try:
            text = (self.dirs["pids"] / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def usage(self) -> Usage:
        """Peak memory, CPU time and OOM kills of everything that ran in the cgroup."""
        memory = self.dirs["memory"]
        if self.version == "v1":
            peak = _read_int(memory / "memory.max_usage_in_bytes")
            cpu = _read_int(self.dirs["cpuacct"] / "cpuacct.usage") / 1e9
            oom = read_counter(memory / "memory.oom_control", "oom_kill") or 0
        else:
            peak = _read_int(memory / "memory.peak")
            cpu = (read_counter(self.dirs["cpu"] / "cpu.stat", "usage_usec") or 0) / 1e6
            oom = read_counter(memory / "memory.events", "oom_kill") or 0
        return Usage(peak_memory_mb=round(peak / (1024 * 1024), 2), cpu_s=round(cpu, 4), oom_kills=oom)

    def kill_all(self) -> None:
        """SIGKILL every process still in the cgroup (leftovers of the step)."""
        for pause in _pauses():
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            time.sleep(pause)

    def remove(self) -> None:
        """Kill what is left and remove the cgroup (it is empty once its processes are reaped)."""
        self.kill_all()
        for folder in set(self.dirs.values()):
            for pause in _pauses():
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(pause)


def _pauses() -> list[float]:
    """Pauses between attempts, doubling from the shortest to the longest (about 1 s in all)."""
    first, longest = REMOVE_PAUSE_S
    return [min(first * 2 ** i, longest) for i in range(REMOVE_ATTEMPTS)]
