"""GPU discovery and exclusive assignment of GPUs to episodes.

:func:`detect_gpus` lists the device indices this process may use. :class:`GpuPool` leases them so that no
GPU is given to two episodes at once, across threads and across processes: each leased index holds an
exclusive ``flock`` on ``<lock_dir>/<index>.lock`` (default ``$DOJOFLOW_HOME/gpu-locks``) for as long as
the lease lasts. ``flock`` locks belong to an open file description, so two threads of one process that
open the file separately exclude each other exactly like two processes do, and the kernel releases the
lock when a process dies, so a crashed worker never leaves a GPU leased.

    pool = GpuPool()
    with pool.lease(timeout=600) as gpu:
        backend.run(ExecutionRequest(..., gpu=gpu))
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from dojoflow.errors import GpuLeaseTimeout, NoGpuError

SMI_TIMEOUT_S = 30

__all__ = ["GpuLeaseTimeout", "GpuMemorySampler", "GpuPool", "NoGpuError", "detect_gpus"]


def _parse_indices(text: str) -> list[int]:
    out: list[int] = []
    for part in text.replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            index = int(part)
        except ValueError:
            continue  # GPU-<uuid> / MIG-<uuid> entries are not indices
        if index < 0:  # CUDA stops enumerating at the first invalid (e.g. -1) entry
            break
        if index not in out:
            out.append(index)
    return out


def detect_gpus() -> list[int]:
    """Device indices available here: ``CUDA_VISIBLE_DEVICES`` when set (``""`` or ``-1`` means none), else
    ``nvidia-smi --query-gpu=index --format=csv,noheader`` when it is installed and works, else ``[]``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return _parse_indices(visible)
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        proc = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=SMI_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return []
    return _parse_indices(proc.stdout) if proc.returncode == 0 else []


def default_lock_dir() -> Path:
    from dojoflow.config import get_settings

    return get_settings().home / "gpu-locks"


class GpuPool:
    """Leases GPU indices exclusively; see the module docstring. ``devices`` defaults to :func:`detect_gpus`."""

    def __init__(self, devices: Sequence[int] | None = None, lock_dir: Path | str | None = None,
                 poll_s: float = 0.05) -> None:
        self.devices = list(detect_gpus() if devices is None else devices)
        self.lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
        self.poll_s = poll_s

    def _try(self, index: int) -> int | None:
        """An fd holding the exclusive lock of ``index``, or None when it is leased elsewhere."""
        fd = os.open(self.lock_dir / f"{index}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:  # who holds it, for people looking at the lock directory
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        return fd

    def acquire(self, timeout: float | None = None) -> tuple[int, int]:
        """(index, lock fd); prefer :meth:`lease`. Blocks until a GPU is free or ``timeout`` seconds pass."""
        if not self.devices:
            raise NoGpuError("no GPU to lease: none detected (CUDA_VISIBLE_DEVICES is empty or unset and "
                             "nvidia-smi lists none); run without a GPU or on a machine with one")
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        # Start at a different device per process so that concurrent workers spread over the GPUs.
        offset = os.getpid() % len(self.devices)
        order = self.devices[offset:] + self.devices[:offset]
        while True:
            for index in order:
                fd = self._try(index)
                if fd is not None:
                    return index, fd
            if deadline is not None and time.monotonic() >= deadline:
                raise GpuLeaseTimeout(f"no GPU became free within {timeout:g} s (all of {self.devices} are "
                                      f"leased; locks in {self.lock_dir})")
            time.sleep(self.poll_s if deadline is None else max(0.0, min(self.poll_s, deadline - time.monotonic())))

    @staticmethod
    def release(fd: int) -> None:
        """Release a lease taken with :meth:`acquire`."""
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def lease(self, timeout: float | None = None) -> Iterator[int]:
        """Hold one GPU index exclusively for the ``with`` block (released on exit, also on exceptions)."""
        index, fd = self.acquire(timeout)
        try:
            yield index
        finally:
            self.release(fd)

    def leased(self) -> list[int]:
        """Indices currently leased by anyone (a snapshot)."""
        busy = []
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        for index in self.devices:
            fd = self._try(index)
            if fd is None:
                busy.append(index)
            else:
                self.release(fd)
        return busy


class GpuMemorySampler:
    """Peak memory used on one GPU while a step runs, sampled from ``nvidia-smi`` in a background thread.

    Device memory is per device, not per process: with the GPU leased to one episode at a time (GpuPool),
    the device's peak during the step is the step's. ``peak_mb`` stays None where no ``nvidia-smi`` answers.
    """

    def __init__(self, index: int, interval_s: float = 0.2) -> None:
        self.index, self.interval_s = index, interval_s
        self.peak_mb: float | None = None
        self._smi = shutil.which("nvidia-smi")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float | None:
        if self._smi is None:
            return None
        try:
            proc = subprocess.run([self._smi, f"--id={self.index}", "--query-gpu=memory.used",
                                   "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
            return float(proc.stdout.strip().splitlines()[0]) if proc.returncode == 0 else None
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            return None

    def _run(self) -> None:
        while True:
            used = self._sample()
            if used is not None:
                self.peak_mb = used if self.peak_mb is None else max(self.peak_mb, used)
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> GpuMemorySampler:
        if self._smi:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
