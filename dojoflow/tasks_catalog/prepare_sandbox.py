"""Third-party preparation code in a sandbox: only the raw data and the output folders are writable.

An imported competition brings its own ``prepare.py`` (MLE-bench's, MLE-Dojo's): code nobody on the team
wrote, run on the user's machine, as root on these machines. Its task kind names the raw data it reads
(``TaskKind.raw_data``); :func:`sandboxed_launch` then runs ``prepare_runner`` inside the bubblewrap
sandbox agents run in (no network, the system read-only, the harness's home hidden, the user's privileges
dropped, no new user namespaces), with:

- the entry's staging folder (``public/``, ``private/``) as the writable workspace;
- a *writable view* of the raw folder at :data:`RAW_INSIDE`: the raw download's files hard-linked into new
  folders that belong to the sandbox user. Competition code extracts archives into its raw folder
  (``extract(raw / "train.zip", raw)`` is common in MLE-bench), so the folder must be writable; the view
  lets it write, while the user's download itself stays untouched: new files land in the view, and the
  linked files keep their owner and modes, so they cannot be changed. Files on another filesystem, or
  that others may not read or may write, are copied instead of linked;
- a copy of the task folder under :data:`TASK_INSIDE` (its own folder may be private to the harness's user)
  and the dojoflow package at its host path, read-only.

Where bubblewrap does not work the preparation runs unsandboxed in its subprocess, with one warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from dojoflow.infra.sandbox.base import ExecutionLimits, ExecutionRequest
from dojoflow.infra.sandbox.bwrap import SANDBOX_WORKSPACE, BwrapBackend, bwrap_available
from dojoflow.infra.sandbox.workspace import TMP_DIR, prepare_mounted_workspace, step_uid
from dojoflow.tasks_catalog.kinds import PREPARE_RAW_ENV

log = logging.getLogger(__name__)

RAW_INSIDE = "/prepare/raw"
TASK_INSIDE = "/prepare/tasks"  # the copy keeps the folder's name (a spec's id is its folder's name)
MIN_PROGRESS_FD = 10  # the runner's progress pipe is moved clear of the bwrap launcher's fds 3 to 5


def writable_view(raw: Path, view: Path, uid: int | None) -> None:
    """Rebuild ``raw``'s folder tree under ``view`` (folders owned by ``uid``) with its files hard-linked."""
    for folder, _subdirs, files in os.walk(raw):
        target = view / os.path.relpath(folder, raw)
        target.mkdir(parents=True, exist_ok=True)
        if uid is not None:
            os.chown(target, uid, uid)
        for name in files:
            source, dest = os.path.join(folder, name), target / name
            mode = os.stat(source).st_mode
            shareable = stat.S_ISREG(mode) and mode & stat.S_IROTH and not mode & stat.S_IWOTH
            try:
                if not shareable:
                    raise OSError("copy")
                os.link(source, dest)
            except OSError:  # another filesystem, or a file the sandbox user could not read or could change
                shutil.copy2(source, dest)
                if uid is not None:
                    os.chown(dest, uid, uid)


def _give_back(root: Path) -> None:
    """Everything the sandbox wrote under ``root`` belongs to the harness again (the cache is the harness's)."""
    uid, gid = os.getuid(), os.getgid()
    for folder, subdirs, files in os.walk(root):
        for name in [*subdirs, *files]:
            os.lchown(os.path.join(folder, name), uid, gid)
    os.lchown(root, uid, gid)


def _readable(root: Path) -> None:
    """Folders 0755 and files 0644 under ``root``: the sandbox user reads them."""
    root.chmod(0o755)
    for folder, subdirs, files in os.walk(root):
        for name in subdirs:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


def _package_root() -> Path:
    """The folder that holds the ``dojoflow`` package (bound read-only so the runner can import it)."""
    import dojoflow

    return Path(dojoflow.__file__).resolve().parent.parent


@contextlib.contextmanager
def sandboxed_launch(runner: str, folder: Path, staging: Path, raw: Path, progress_fd: int, timeout_s: float,
                     extra_args: Sequence[str] = ()) -> Iterator[tuple[list[str], dict[str, str] | None, int]]:
    """(argv, environment, progress fd to pass) for running the module ``runner`` (``prepare_runner``) on the
    task ``folder`` into
    ``staging/public`` and ``staging/private``; sandboxed when bubblewrap works, else the plain command.
    The caller closes the fd it is given once the child started."""
    ok, reason = bwrap_available()
    if not ok:
        log.warning("preparing %s without a sandbox (%s): its prepare.py runs with the harness's privileges",
                    folder.name, reason)
        with _env_set(PREPARE_RAW_ENV, str(raw)):
            yield ([sys.executable, "-m", runner, str(folder), str(staging / "public"), str(staging / "private"),
                    str(progress_fd), *extra_args], None, progress_fd)
        return
    scratch = Path(tempfile.mkdtemp(prefix=".sandbox-", dir=staging.parent))
    fd = fcntl.fcntl(progress_fd, fcntl.F_DUPFD, MIN_PROGRESS_FD)
    given = False
    try:
        package, tasks = _package_root(), scratch / "tasks"
        shutil.copytree(folder, tasks / folder.name, symlinks=False)
        _readable(tasks)
        request = ExecutionRequest(
            (sys.executable, "-m", runner, f"{TASK_INSIDE}/{folder.name}", f"{SANDBOX_WORKSPACE}/public",
             f"{SANDBOX_WORKSPACE}/private", str(fd), *extra_args),
            staging, limits=ExecutionLimits(timeout_s=timeout_s, memory_mb=_memory_mb(), max_file_mb=1 << 20),
            extra_env={PREPARE_RAW_ENV: RAW_INSIDE, "PYTHONPATH": str(package)})
        uid = step_uid(request)
        prepare_mounted_workspace(request, uid)
        view = scratch / "raw"
        writable_view(raw, view, uid)
        backend = BwrapBackend(extra_ro_binds=[package])
        argv, env, _ = backend.launch_argv(request, scratch, uid, extra_binds=[(tasks, TASK_INSIDE)],
                                           writable_binds=[(view, RAW_INSIDE)])
        given = True
        yield argv, env, fd
    finally:
        if not given:
            os.close(fd)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(staging / TMP_DIR, ignore_errors=True)  # the sandbox's scratch folder is no output
        _give_back(staging)


def _memory_mb() -> int:
    """Preparations may need most of the machine (large Kaggle downloads): the sandbox's /tmp may hold up to
    half of it; the memory limit itself is the task's timeout's job, not a cap here."""
    try:
        return max(1024, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (2 << 20))
    except (ValueError, OSError):
        return 8192


@contextlib.contextmanager
def _env_set(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
