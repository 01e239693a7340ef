"""Bounded capture of a child's output: keep head and tail, count everything, flag overflow."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO, Protocol

from dojoflow.infra.sandbox.base import ExecutionResult

MEMORY_ERROR_MARKERS = ("MemoryError", "Unable to allocate", "std::bad_alloc", "Cannot allocate memory")


CHUNK = 65536


class Readable(Protocol):
    """What :class:`BoundedStream` drains: a pipe, or anything with ``read`` and ``close``."""

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end."""
        ...

    def close(self) -> None:
        """Release the source."""
        ...


class BoundedStream:
    """Drains a pipe in a thread, keeping the first and last ``keep // 2`` bytes.

    Draining continuously means a chatty child never blocks on a full pipe; keeping only head and tail
    means printing gigabytes costs no memory. ``on_overflow`` is called once when ``limit`` is passed.
    """

    def __init__(self, pipe: Readable | IO[bytes] | None, keep: int, limit: int,
                 on_overflow: Callable[[], None]) -> None:
        if pipe is None:
            raise ValueError("BoundedStream needs a pipe (was the process started with stdout=PIPE?)")
        self._pipe, self._half, self._limit, self._on_overflow = pipe, keep // 2, limit, on_overflow
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.overflowed = False
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        read = getattr(self._pipe, "read1", self._pipe.read)  # read1: whatever is there, without waiting for more
        while chunk := read(CHUNK):
            self.total += len(chunk)
            room = self._half - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail += chunk
                if len(self.tail) > self._half:
                    del self.tail[: len(self.tail) - self._half]
            if self.total > self._limit and not self.overflowed:
                self.overflowed = True
                self._on_overflow()
        self._pipe.close()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the reader thread (the pipe reached its end or ``timeout`` passed)."""
        self._thread.join(timeout)

    def text(self) -> str:
        """Head and tail joined by a marker saying how much was left out."""
        skipped = self.total - len(self.head) - len(self.tail)
        if skipped <= 0:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", "replace")
        marker = f"\n... [{skipped} bytes of output omitted] ...\n".encode()
        return (bytes(self.head) + marker + bytes(self.tail)).decode("utf-8", "replace")


def captured_result(out: BoundedStream, err: BoundedStream, *, exit_code: int | None, timed_out: bool,
                    duration_s: float, cpu_s: float, peak_memory_mb: float, backend: str, isolated: bool,
                    oom_killed: bool = False, error: str | None = None) -> ExecutionResult:
    """Build a step's result from its captured streams; every backend reports through this one place.

    Out of memory: the platform said so (``oom_killed``), or a failed step's stderr ends with an allocation
    error (an rlimit makes allocations fail rather than invoking the OOM killer).
    """
    stderr = err.text()
    failed = exit_code not in (0, None)
    oom = oom_killed or (not timed_out and failed and any(m in stderr[-4000:] for m in MEMORY_ERROR_MARKERS))
    return ExecutionResult(exit_code=exit_code, timed_out=timed_out, oom=oom,
                           output_limited=out.overflowed or err.overflowed, duration_s=round(duration_s, 4),
                           cpu_s=round(cpu_s, 4), peak_memory_mb=round(peak_memory_mb, 2), stdout=out.text(),
                           stderr=stderr, stdout_bytes=out.total, stderr_bytes=err.total, backend=backend,
                           isolated=isolated, error=error)
