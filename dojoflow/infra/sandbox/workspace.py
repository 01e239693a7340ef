"""The episode workspace on the host side: its layout, who owns it, and the check after every step.

Shared by the backends that mount the workspace into an isolated sandbox (``bwrap``, ``docker``) and by the
warm mode through them. Inside, the workspace is :data:`SANDBOX_WORKSPACE`; the public data is mounted
read-only at ``data/`` in it and ``tmp/`` is the code's scratch folder.

Run as root, the harness hands the workspace to an unprivileged uid derived from its path
(:func:`sandbox_uid`), so concurrent episodes never share a uid (and so a process count).

After each step :func:`sanitize_workspace` removes what could trick the harness on the host: symlinks that
resolve outside the workspace (e.g. ``submission.csv -> <DOJOFLOW_HOME>/.../private/answers.csv``; links to
``/workspace/...`` are rewritten relative) and FIFOs, sockets and device files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import stat
from pathlib import Path

from dojoflow.infra.sandbox.base import ExecutionRequest

log = logging.getLogger(__name__)

SANDBOX_WORKSPACE = "/workspace"
DATA_DIR = "data"
TMP_DIR = "tmp"
# Sandbox uids (root harness only): one per workspace, far above any real account or subuid range.
UID_BASE = 1_700_000_000
UID_SPAN = 1 << 24


def is_privileged() -> bool:
    """Whether the harness runs as root (it then drops the code to :func:`sandbox_uid`)."""
    return os.geteuid() == 0


def sandbox_uid(workspace: Path) -> int:
    """The unprivileged uid a root harness runs this workspace's code as (stable across its steps)."""
    digest = hashlib.sha256(str(Path(workspace).resolve()).encode()).digest()
    return UID_BASE + int.from_bytes(digest[:8], "big") % UID_SPAN


def step_uid(request: ExecutionRequest) -> int | None:
    """The uid of this request's code when the harness is root, else None (the harness's own)."""
    return sandbox_uid(request.workspace) if is_privileged() else None


def resolved(request: ExecutionRequest) -> ExecutionRequest:
    """The request with absolute, symlink-free workspace and public paths (what mounts need)."""
    public = None if request.public_dir is None else Path(request.public_dir).resolve()
    return dataclasses.replace(request, workspace=Path(request.workspace).resolve(), public_dir=public)


def within(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or lies below it (lexically)."""
    return path == root or root in path.parents


def data_mount_point(request: ExecutionRequest) -> Path | None:
    """Where the public data is mounted in the workspace (None when the request mounts none)."""
    return request.workspace / DATA_DIR if request.public_dir is not None else None


MAX_WORKSPACE_ENTRIES = 200_000  # the after-step check stays under a few seconds


class WorkspaceTooLarge(OSError):
    """The workspace holds more entries than the after-step check walks."""


def walk(workspace: Path, skip: Path | None = None, limit: int | None = None) -> list[os.DirEntry]:
    """Everything in the workspace (one scandir per folder), symlinks not followed, ``skip`` not entered;
    more than ``limit`` entries raise :class:`WorkspaceTooLarge`."""
    skip_path = None if skip is None else str(skip)
    out: list[os.DirEntry] = []
    stack = [str(workspace)]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except (FileNotFoundError, NotADirectoryError):
            continue
        with it:
            for entry in it:
                out.append(entry)
                if limit is not None and len(out) > limit:
                    raise WorkspaceTooLarge(f"the workspace holds more than {limit:,} files and folders; the "
                                            "steps fail until the code removes some (e.g. write fewer, larger "
                                            "files, or delete intermediate results)")
                if entry.is_dir(follow_symlinks=False) and entry.path != skip_path:
                    stack.append(entry.path)
    return out


def kind_of(path: Path) -> str | None:
    """``file``, ``directory``, ``symlink``, ``fifo``, ``socket``, ``device``, or None when nothing is there."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def remove_any(path: Path) -> None:
    """Remove whatever is at ``path`` (a folder with everything in it); nothing there is fine."""
    kind = kind_of(path)
    if kind == "directory":
        shutil.rmtree(path)
    elif kind is not None:
        path.unlink()


def ensure_directory(path: Path) -> None:
    """Make ``path`` a real directory: whatever else is there (a file, a symlink, a FIFO) is removed first."""
    if kind_of(path) not in (None, "directory"):
        remove_any(path)
    path.mkdir(parents=True, exist_ok=True)


def prepare_mounted_workspace(request: ExecutionRequest, uid: int | None) -> None:
    """Create ``tmp/`` and the ``data/`` mount point (replacing a file or link the code left in their place);
    hand the workspace to the sandbox uid.

    Ownership costs one stat per top-level entry: what the code writes already belongs to the sandbox uid,
    and the harness writes only top-level files (the step scripts). The first time a workspace meets this uid
    (e.g. it was used by another backend before) everything in it is handed over.
    """
    ws = request.workspace
    ensure_directory(ws / TMP_DIR)
    mount_point = data_mount_point(request)
    if mount_point is not None:
        ensure_directory(mount_point)  # e.g. replaces the symlink the local backend leaves
    for folder in writable_mounts(request):
        ensure_directory(folder)
    if uid is None:
        return
    for folder, skip in [(ws, mount_point), *((m, None) for m in writable_mounts(request))]:
        _hand_over(folder, skip, uid)


def writable_mounts(request: ExecutionRequest) -> list[Path]:
    """The host folders of the request's writable mounts (treated like the workspace)."""
    return [Path(m.host) for m in request.mounts if m.writable]


def _hand_over(folder: Path, skip: Path | None, uid: int) -> None:
    first_handover = folder.lstat().st_uid != uid
    if first_handover:
        os.lchown(folder, uid, uid)
    entries = walk(folder, skip) if first_handover else list(os.scandir(folder))
    for entry in entries:
        if (skip is None or entry.path != str(skip)) and entry.stat(follow_symlinks=False).st_uid != uid:
            os.lchown(entry.path, uid, uid)


def sanitize_workspace(workspace: Path, skip: Path | None = None, uid: int | None = None) -> list[str]:
    """Remove what could trick the harness on the host; returns what was removed or rewritten."""
    ws_real = Path(os.path.realpath(workspace))
    changed: list[str] = []
    for entry in walk(workspace, skip, MAX_WORKSPACE_ENTRIES):
        path = Path(entry.path)
        if entry.is_symlink():
            target = os.readlink(path)
            try:
                if within(Path(os.path.realpath(path)), ws_real):
                    continue
            except OSError:  # e.g. a link through /proc/1/root: unresolvable means unsafe
                pass
            path.unlink()
            inside = None
            if target == SANDBOX_WORKSPACE or target.startswith(SANDBOX_WORKSPACE + "/"):
                inside = Path(os.path.normpath(ws_real / target[len(SANDBOX_WORKSPACE):].lstrip("/")))
            if inside is not None and within(inside, ws_real):
                os.symlink(os.path.relpath(inside, Path(os.path.realpath(path.parent))), path)
                if uid is not None:
                    os.lchown(path, uid, uid)
                changed.append(f"rewrote {path} -> {target} as relative")
            else:
                changed.append(f"removed symlink {path} -> {target}")
        elif not (entry.is_file(follow_symlinks=False) or entry.is_dir(follow_symlinks=False)):
            path.unlink()
            changed.append(f"removed special file {path}")
    for line in changed:
        log.warning("sandbox: %s", line)
    return changed


def check_mounted_workspace(request: ExecutionRequest, uid: int | None) -> str | None:
    """The after-step check of a mounted workspace: None, or why the step must fail (an unchecked
    workspace must not be used)."""
    try:
        sanitize_workspace(request.workspace, data_mount_point(request), uid)
        for folder in writable_mounts(request):
            sanitize_workspace(folder, None, uid)
    except WorkspaceTooLarge as exc:
        return str(exc)
    except OSError as exc:
        return f"the workspace could not be checked after the step: {type(exc).__name__}: {exc}"
    return None
