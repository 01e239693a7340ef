"""Atomic writes: a file or a folder appears complete or not at all, even if the writer is killed midway.

Both helpers write into a temporary sibling (same filesystem, so the final ``rename`` is atomic) and
remove it when the block fails. Readers skip names starting with :data:`TMP_PREFIX`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` in one rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(target: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``target`` atomically; returns ``target``."""
    with atomic_file(target) as tmp:
        if isinstance(data, str):
            tmp.write_text(data)
        else:
            tmp.write_bytes(data)
    return Path(target)


@contextlib.contextmanager
def atomic_directory(target: Path, prefix: str = TMP_PREFIX) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``target``; on success it becomes ``target`` (an existing
    ``target`` is replaced)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
