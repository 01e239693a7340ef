"""Task data preparation into a content-addressed cache.

A task folder's ``prepare.py`` defines ``prepare(spec, public_dir, private_dir)``; most built-in tasks
load a labelled frame and call :func:`write_standard_split`. The result is cached under
``$DOJOFLOW_HOME/data/<task-id>/<key>/`` where ``key`` hashes the task's files (spec, description,
preparation code) and the preparation format, so editing a task invalidates its cache and a second
prepare is a cache hit.

Writes are atomic: preparation happens in a temporary sibling directory that is renamed into place only
when complete, and a file lock serialises concurrent preparations of the same entry, so a killed
preparation never leaves an entry that is later used and two processes produce one entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dojoflow.atomic import atomic_directory
from dojoflow.errors import DojoflowError, PreparationError
from dojoflow.tasks_catalog.kinds import task_kind
from dojoflow.tasks_catalog.spec import SPEC_FILE, TaskSpec

if TYPE_CHECKING:
    import pandas as pd

PREPARATION_FORMAT = "1"
MANIFEST = "manifest.json"
ANSWERS_FILE = "answers.csv"
LEADERBOARD_SPLIT_FILE = "leaderboard_split.csv"
RUNNER = "dojoflow.tasks_catalog.prepare_runner"  # run as ``python -m RUNNER``; it imports this module


@dataclass(frozen=True)
class PreparedData:
    """Locations of a prepared task. ``public`` is what an agent may read; ``private`` it must never read."""

    task_id: str
    key: str
    root: Path
    cache_hit: bool

    @property
    def public(self) -> Path:
        """What the agent may read."""
        return self.root / "public"

    @property
    def private(self) -> Path:
        """What the agent must never read."""
        return self.root / "private"

    @property
    def answers(self) -> Path:
        """The hidden answers of the test rows."""
        return self.private / ANSWERS_FILE

    @property
    def leaderboard_split(self) -> Path:
        """Which test rows are in the public part and which in the private part."""
        return self.private / LEADERBOARD_SPLIT_FILE


# -- progress reporting ------------------------------------------------------------------------------------
# A preparation may report progress: ``progress(done, total, message)``. ``prepare_task(progress=...)`` installs
# the callback for the duration of one preparation; a task's prepare.py calls ``report_progress`` (a no-op
# when nobody listens). The CLI turns it into a rich progress bar.
ProgressFn = Callable[[float, float, str], None]
_progress: list[ProgressFn] = []


def report_progress(done: float, total: float, message: str = "") -> None:
    """Tell whoever prepares this task how far it got (called from a task's prepare.py)."""
    for fn in _progress:
        fn(done, total, message)


@contextlib.contextmanager
def progress_callback(fn: ProgressFn | None) -> Iterator[None]:
    """Install ``fn`` as the progress listener while the block runs."""
    if fn is None:
        yield
        return
    _progress.append(fn)
    try:
        yield
    finally:
        _progress.remove(fn)


def cache_key(spec: TaskSpec) -> str:
    """Hash of everything that determines the prepared data: the task's files and the format version."""
    digest = hashlib.sha256(f"format={PREPARATION_FORMAT}\n".encode())
    for name in (SPEC_FILE, "description.md", "prepare.py"):
        digest.update(name.encode() + b"\0" + (spec.folder / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _sha256(p) for p in sorted(root.rglob("*")) if p.is_file() and p.name != MANIFEST}


def verify(prepared: PreparedData) -> None:
    """Check every file of a cache entry against its manifest; raise PreparationError on any mismatch."""
    manifest = json.loads((prepared.root / MANIFEST).read_text())
    actual = _file_checksums(prepared.root)
    if actual != manifest["files"]:
        changed = sorted(set(actual.items()) ^ set(manifest["files"].items()))
        raise PreparationError(
            f"prepared data for '{prepared.task_id}' at {prepared.root} does not match its checksums "
            f"({', '.join(name for name, _ in changed[:5])}); remove it and prepare again"
        )


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive file lock on ``lock_path`` while the block runs (serialises processes)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_file_module(path: Path, module_name: str):
    """Import a Python file that is not on ``sys.path`` (a task's prepare.py, a competition's grade.py)."""
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise PreparationError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def load_prepare_module(spec: TaskSpec):
    """The task's ``prepare.py`` as a module (it must define ``prepare``)."""
    module = load_file_module(spec.prepare_path, f"dojoflow_task_prepare_{spec.id.replace('-', '_')}")
    if not hasattr(module, "prepare"):
        raise PreparationError(f"{spec.prepare_path}: defines no prepare(spec, public_dir, private_dir) function")
    return module


_verified: set[tuple[str, int]] = set()


def prepare_task(spec: TaskSpec, data_dir: Path, check: bool = True,
                 progress: ProgressFn | None = None) -> PreparedData:
    """Return the prepared data of ``spec``, preparing it into the cache first if needed.

    ``progress(done, total, message)`` is called as the preparation advances (see ``report_progress``).
    """
    key = cache_key(spec)
    task_dir = data_dir / spec.id
    final = task_dir / key
    if (final / MANIFEST).is_file():
        prepared = PreparedData(spec.id, key, final, cache_hit=True)
        stamp = (str(final), (final / MANIFEST).stat().st_mtime_ns)
        if check and stamp not in _verified:  # checksums once per process and entry, not every episode
            verify(prepared)
            _verified.add(stamp)
        return prepared
    with exclusive_lock(task_dir / f"{key}.lock"):
        if (final / MANIFEST).is_file():  # another process finished while we waited
            return PreparedData(spec.id, key, final, cache_hit=True)
        with atomic_directory(final, prefix=f".tmp-{key}-") as tmp:  # a stale entry of a killed run is replaced
            (tmp / "public").mkdir()
            (tmp / "private").mkdir()
            with progress_callback(progress):
                report_progress(0, 1, f"preparing {spec.id}")
                run_prepare(spec, tmp / "public", tmp / "private", task_dir / f"{key}.log")
                report_progress(1, 1, f"prepared {spec.id}")
            shutil.copyfile(spec.description_path, tmp / "public" / "description.md")
            check_prepared(spec, tmp)
            manifest = {"task_id": spec.id, "key": key, "created": time.time(), "files": _file_checksums(tmp)}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return PreparedData(spec.id, key, final, cache_hit=False)


def run_prepare(spec: TaskSpec, public: Path, private: Path, log_file: Path) -> None:
    """Run the task's ``prepare.py`` in a child process (``prepare_runner``) with the spec's timeout; its
    output goes to ``log_file``; progress it reports reaches :func:`report_progress` here. Third-party
    preparation code (a task kind that names raw data) runs sandboxed (``prepare_sandbox``)."""
    raw = task_kind(spec.task_type).raw_folder(spec)
    run_preparation_child(spec.folder, public, private, log_file, spec.resources.prepare_timeout_s, raw,
                          label=str(spec.prepare_path))


def run_preparation_child(folder: Path, public: Path, private: Path, log_file: Path, timeout_s: float,
                          raw: Path | None = None, entry: str = "", label: str = "") -> None:
    """``prepare_runner`` on ``folder`` (with ``entry``, see there) in a child process with a timeout;
    sandboxed, with ``raw`` as its writable raw data, when ``raw`` is given. ``public`` and ``private`` must
    be siblings (their parent is the sandbox's workspace). Raises PreparationError (or the DojoflowError
    the preparation raised on purpose)."""
    label = label or str(folder)
    extra = [entry] if entry else []
    read_fd, write_fd = os.pipe()
    if raw is None:
        launch: contextlib.AbstractContextManager = contextlib.nullcontext(
            ([sys.executable, "-m", RUNNER, str(folder), str(public), str(private), str(write_fd), *extra],
             None, write_fd))
    else:
        from dojoflow.tasks_catalog.prepare_sandbox import sandboxed_launch

        launch = sandboxed_launch(RUNNER, folder, public.parent, raw, write_fd, timeout_s, extra)
    open_fds = {read_fd, write_fd}
    try:
        with open(log_file, "wb") as log, launch as (command, env, pass_fd):
            open_fds.add(pass_fd)
            try:
                proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        pass_fds=(pass_fd,), start_new_session=True, env=env)
            finally:  # the child holds the write end now; the reader sees the end of the stream when it exits
                for fd in {write_fd, pass_fd}:
                    os.close(fd)
                    open_fds.discard(fd)
            open_fds.discard(read_fd)  # the reader owns it from here
            reported: list[dict] = []
            reader = threading.Thread(target=_forward_progress, args=(read_fd, reported), daemon=True)
            reader.start()
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_tree(proc)
                raise PreparationError(f"{label}: preparation took longer than {timeout_s:g} s "
                                       f"(resources.prepare_timeout_s) and was stopped; its output is in "
                                       f"{log_file}") from None
            except BaseException:
                _kill_tree(proc)
                raise
            finally:
                reader.join(5)
    finally:
        for fd in open_fds:  # the child never started
            os.close(fd)
    if code != 0 and reported:
        raise _as_dojoflow_error(reported[-1]["type"], str(reported[-1]["error"]))
    if code != 0:
        tail = log_file.read_text(errors="replace").strip().splitlines()[-8:]
        raise PreparationError(f"{label}: preparation failed (exit status {code}); last output:\n  "
                               + "\n  ".join(tail or ["(no output)"]) + f"\n(full output: {log_file})")


def _forward_progress(fd: int, errors: list[dict]) -> None:
    with os.fdopen(fd) as stream:
        for line in stream:
            try:
                report = json.loads(line)
                if isinstance(report, dict):
                    errors.append(report)
                    continue
                done, total, message = report
            except (ValueError, TypeError, KeyError):
                continue
            report_progress(done, total, message)


def _as_dojoflow_error(type_name: object, message: str) -> DojoflowError:
    """The error the child raised on purpose, as the same class here when it is one of dojoflow's own (and
    takes a plain message), else as a PreparationError with the same words."""
    from dojoflow import errors

    cls = getattr(errors, str(type_name), None)
    if isinstance(cls, type) and issubclass(cls, DojoflowError):
        try:
            return cls(message)
        except TypeError:
            pass
    return PreparationError(message)


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def check_prepared(spec: TaskSpec, root: Path) -> None:
    """What a preparation must have produced, checked before the entry is cached, so that a broken task
    fails at ``tasks prepare`` with the reason, not later in an episode."""
    from dojoflow.tasks_catalog.leaderboard import load_leaderboard

    answers = root / "private" / ANSWERS_FILE
    if not answers.is_file():
        raise PreparationError(f"{spec.prepare_path}: prepare() wrote no private/{ANSWERS_FILE}")
    expected = [spec.submission.id_column, *spec.submission.target_columns]
    with answers.open() as fh:
        header = fh.readline().strip().split(",")
    if spec.grader is None:
        missing = [c for c in expected if c not in header]
        if missing:
            raise PreparationError(f"{spec.prepare_path}: private/{ANSWERS_FILE} lacks the columns "
                                   f"{', '.join(missing)} that task.yaml's submission section names "
                                   f"(it has {', '.join(header)})")
        sample = root / "public" / "sample_submission.csv"
        if sample.is_file():
            with sample.open() as fh:
                columns = fh.readline().strip().split(",")
            if columns != expected:
                raise PreparationError(f"{spec.prepare_path}: public/sample_submission.csv has the columns "
                                       f"{', '.join(columns)}; task.yaml says {', '.join(expected)}")
    try:
        load_leaderboard(spec.leaderboard_path, spec.higher_is_better, spec.leaderboard.provenance)
    except DojoflowError as exc:
        raise PreparationError(f"{spec.id}: the leaderboard cannot be used: {exc}") from None


def write_standard_split(frame: pd.DataFrame, spec: TaskSpec, public_dir: Path, private_dir: Path) -> None:
    """Split a labelled frame as the spec says and write the standard public/private files.

    ``split.method: random`` (default): rows are shuffled with the spec's seed and given fresh integer ids
    (so ids carry no label order). Single-target classification splits are stratified. The test rows are
    further split, also stratified, into the part scored during the episode (``public``) and the part used
    for the final grade (``private``).

    ``split.method: time``: rows are ordered by ``split.time_column`` (stable), ids follow that order, the
    test rows are the last ``test_fraction`` of the rows (the latest period, never shuffled) and, as in a
    Kaggle forecasting competition, the public part is the earlier ``public_fraction`` of the test period and
    the private part the later rest.

    Several target columns (multi-label, multi-output) are all held out; the sample submission has one
    placeholder column per target.
    """
    sub = spec.submission
    targets = list(sub.target_columns)
    if spec.split.method == "time":
        train, test, public_ids = _time_split(frame, spec)
    else:
        train, test, public_ids = _random_split(frame, spec)

    train.to_csv(public_dir / "train.csv", index=False)
    test.drop(columns=targets).to_csv(public_dir / "test.csv", index=False)
    sample = test[[sub.id_column]].copy()
    for column in targets:
        sample[column] = _placeholder_prediction(spec, train[column])
    sample.to_csv(public_dir / "sample_submission.csv", index=False)

    test[[sub.id_column, *targets]].to_csv(private_dir / ANSWERS_FILE, index=False)
    parts = test[[sub.id_column]].copy()
    parts["part"] = ["public" if i in public_ids else "private" for i in parts[sub.id_column]]
    parts.to_csv(private_dir / LEADERBOARD_SPLIT_FILE, index=False)


def _random_split(frame: pd.DataFrame, spec: TaskSpec):
    from sklearn.model_selection import train_test_split

    sub = spec.submission
    targets = list(sub.target_columns)
    frame = frame.sample(frac=1.0, random_state=spec.split.seed).reset_index(drop=True)
    frame.insert(0, sub.id_column, range(len(frame)))
    stratify = frame[targets[0]] if task_kind(spec.task_type).stratify and len(targets) == 1 else None
    train, test = train_test_split(frame, test_size=spec.split.test_fraction, random_state=spec.split.seed,
                                   stratify=stratify)
    test_strat = test[targets[0]] if stratify is not None else None
    public_part, _ = train_test_split(test, train_size=spec.split.public_fraction,
                                      random_state=spec.split.seed + 1, stratify=test_strat)
    return train.sort_values(sub.id_column), test.sort_values(sub.id_column), set(public_part[sub.id_column])


def _time_split(frame: pd.DataFrame, spec: TaskSpec):
    sub = spec.submission
    column = spec.split.time_column
    if column not in frame.columns:
        raise PreparationError(f"{spec.folder / SPEC_FILE}: field 'split.time_column': column '{column}' is not "
                               f"in the prepared frame (columns: {', '.join(map(str, frame.columns))})")
    frame = frame.sort_values(column, kind="stable").reset_index(drop=True)
    frame.insert(0, sub.id_column, range(len(frame)))
    n_test = max(2, int(round(len(frame) * spec.split.test_fraction)))
    train, test = frame.iloc[:-n_test], frame.iloc[-n_test:]
    n_public = max(1, int(round(n_test * spec.split.public_fraction)))
    return train, test, set(test[sub.id_column].iloc[:n_public])


def _placeholder_prediction(spec: TaskSpec, train_target: pd.Series):
    """A valid, uninformed prediction for the sample submission."""
    kind = spec.metric.prediction
    if kind == "label":
        return (spec.submission.classes or ("0",))[0]  # label metrics require classes (validated in the spec)
    if kind == "probability":
        return 0.5
    return round(float(train_target.mean()), 6)


# -- cache inspection --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CacheEntry:
    """One directory under the data cache: a prepared entry, or a leftover temporary directory."""

    task_id: str
    key: str
    path: Path
    size_bytes: int
    created: float | None
    current: bool  # its key is the current key of a registered task
    complete: bool  # has a manifest (a finished preparation)
    temporary: bool  # a ``.tmp-*`` directory left by a killed preparation


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def cache_entries(data_dir: Path, current_keys: dict[str, str]) -> list[CacheEntry]:
    """Every entry under ``data_dir`` (``<task>/<key>/``), with whether its key is ``current_keys[task]``."""
    entries: list[CacheEntry] = []
    if not Path(data_dir).is_dir():
        return entries
    for task_dir in sorted(p for p in Path(data_dir).iterdir() if p.is_dir()):
        for entry in sorted(p for p in task_dir.iterdir() if p.is_dir()):
            temporary = entry.name.startswith(".tmp-")
            key = entry.name.split("-")[1] if temporary else entry.name
            manifest = entry / MANIFEST
            created = None
            if manifest.is_file():
                try:
                    created = float(json.loads(manifest.read_text()).get("created"))
                except (ValueError, TypeError, OSError):
                    created = None
            entries.append(CacheEntry(task_dir.name, key, entry, _dir_size(entry), created,
                                      current=not temporary and current_keys.get(task_dir.name) == key,
                                      complete=manifest.is_file(), temporary=temporary))
    return entries


def prune_cache(data_dir: Path, current_keys: dict[str, str], dry_run: bool = False) -> list[CacheEntry]:
    """Remove entries whose key is not current, incomplete entries and leftover ``.tmp-*`` directories.

    A temporary directory is removed only when no preparation holds its lock (it is not in progress).
    Returns what was (or, with ``dry_run``, would be) removed.
    """
    removed = []
    for entry in cache_entries(data_dir, current_keys):
        if entry.current and entry.complete:
            continue
        lock = entry.path.parent / f"{entry.key}.lock"
        if entry.temporary and lock.exists() and _lock_busy(lock):
            continue  # a preparation is writing it right now
        removed.append(entry)
        if not dry_run:
            shutil.rmtree(entry.path, ignore_errors=True)
            if not entry.temporary and lock.exists() and not _lock_busy(lock):
                lock.unlink(missing_ok=True)
    return removed


def _lock_busy(lock_path: Path) -> bool:
    with lock_path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False
