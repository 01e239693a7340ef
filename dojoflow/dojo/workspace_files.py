"""The harness's own reads and writes in an episode workspace, written so that nothing the agent leaves
there can crash the harness.

The agent owns the workspace: between steps it may hold anything - a directory named ``submission.csv``
(Spark and Dask write their CSVs that way), a FIFO or a symlink where the harness writes the next step's
script, a file where ``tmp/`` was. Every function here turns such a thing into a clear message for the
agent (the step fails, the episode goes on) instead of an exception, and a full disk into the same.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from dojoflow.infra.sandbox.workspace import kind_of, remove_any

__all__ = ["WORKSPACE_AT_END", "WorkspaceProblem", "collect_submission", "describe_os_error", "kind_of",
           "remove_any", "write_harness_file"]

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
WORKSPACE_AT_END = "workspace-at-end"  # where the integrity check moves what the agent left (inspectable)


class WorkspaceProblem(Exception):
    """Something in the workspace, or the disk, stops the harness from doing its part of a step."""

    def __init__(self, message: str, disk_full: bool = False) -> None:
        super().__init__(message)
        self.disk_full = disk_full


def describe_os_error(exc: OSError, what: str) -> WorkspaceProblem:
    """A :class:`WorkspaceProblem` for an ``OSError`` met while doing ``what``."""
    if exc.errno in DISK_FULL_ERRNOS:
        return WorkspaceProblem(f"the disk holding the episode is full ({what}: {exc.strerror}); files the code "
                                "wrote in the workspace count: write less, or delete what you no longer need",
                                disk_full=True)
    return WorkspaceProblem(f"{what} failed: {type(exc).__name__}: {exc}")


def write_harness_file(path: Path, text: str) -> None:
    """Write the harness's own file (the step's script) in the workspace, refusing to follow or replace
    anything the agent put in its place."""
    kind = kind_of(path)
    if kind not in (None, "file"):
        raise WorkspaceProblem(f"the workspace holds a {kind} named {path.name}, where the harness writes this "
                               f"step's script; remove or rename it")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    except OSError as exc:
        raise describe_os_error(exc, f"writing {path.name}") from None


def collect_submission(produced: Path, keep_as: Path) -> str | None:
    """Move the step's submission out of the workspace into the step's folder; None when it was a plain
    file (or there was none), else why it cannot be graded (what was there is moved aside or removed)."""
    kind = kind_of(produced)
    if kind is None:
        return None
    if kind == "file":
        shutil.move(produced, keep_as)
        return None
    if kind == "directory":
        shutil.move(produced, keep_as.with_name(keep_as.name + ".directory"))
        return (f"{produced.name} is a directory, as Spark and Dask write CSVs (a folder of part files); write "
                f"one CSV file, e.g. with pandas: frame.to_csv('{produced.name}', index=False)")
    remove_any(produced)
    return f"{produced.name} is a {kind}, not a regular file; write the predictions into a plain CSV file"
