"""Finding tasks: the built-in ones shipped in ``builtin/``, folders listed in ``DOJOFLOW_TASK_PATH``,
imported competitions in ``$DOJOFLOW_HOME/imported`` (see ``mlebench.py``, ``mledojo.py``) and generated tasks in
``$DOJOFLOW_HOME/synthetic`` (see ``dojoflow/synth``).

``DOJOFLOW_TASK_PATH`` is an ``os.pathsep``-separated list of directories, each holding task folders
(one folder per task with a ``task.yaml``).
"""

from __future__ import annotations

import os
from pathlib import Path

from dojoflow.errors import DojoflowError, UnknownTaskError
from dojoflow.tasks_catalog.spec import SPEC_FILE, TaskSpec, load_spec

BUILTIN_DIR = Path(__file__).parent / "builtin"


def task_roots() -> list[Path]:
    """Directories searched for task folders, built-ins first."""
    extra = [Path(p) for p in os.environ.get("DOJOFLOW_TASK_PATH", "").split(os.pathsep) if p]
    return [BUILTIN_DIR, *extra, imported_dir(), synthetic_dir()]


def _home() -> Path:
    home = os.environ.get("DOJOFLOW_HOME")
    return (Path(home) if home else Path.home() / ".dojoflow").expanduser().resolve()


def imported_dir() -> Path:
    """``$DOJOFLOW_HOME/imported``: where ``tasks import-mlebench`` writes task folders."""
    return _home() / "imported"


def synthetic_dir() -> Path:
    """``$DOJOFLOW_HOME/synthetic``: where ``dojoflow synth`` writes the tasks it keeps."""
    return _home() / "synthetic"


SOURCE_BY_KIND = {"mlebench-import": "mlebench", "mledojo-import": "mledojo", "sandmle-import": "sandmle"}


def task_sources(spec: TaskSpec) -> list[str]:
    """Where a task comes from: ``built-in``, ``mlebench``, ``mledojo``, ``sandmle``, ``synthetic`` or ``local``
    (a DOJOFLOW_TASK_PATH folder). An imported competition present in several benchmarks lists each
    (the ``sources`` tag, e.g. ``mlebench,mledojo``)."""
    if spec.tags.get("sources"):
        return [s.strip() for s in spec.tags["sources"].split(",") if s.strip()]
    folder = Path(spec.folder).resolve()
    if folder.parent == BUILTIN_DIR.resolve():
        return ["built-in"]
    if folder.parent == synthetic_dir():
        return ["synthetic"]
    return [SOURCE_BY_KIND.get(spec.task_type, "local")]


def tasks_in_split(split: str) -> list[TaskSpec]:
    """Registered tasks whose ``splits`` tag names ``split`` (e.g. ``lite``, ``mlebench-lite``)."""
    return [spec for spec in list_tasks() if split in spec.splits]


def task_folders() -> dict[str, Path]:
    """Map of task id (folder name) to folder, over all roots; a later root does not shadow a built-in."""
    found: dict[str, Path] = {}
    for root in task_roots():
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if (folder / SPEC_FILE).is_file():
                found.setdefault(folder.name, folder)
    return found


def load_all() -> tuple[list[TaskSpec], dict[str, DojoflowError]]:
    """Every registered task: (the specs that load, {task id: why it does not} for broken folders)."""
    specs, broken = [], {}
    for task_id, folder in task_folders().items():
        try:
            specs.append(load_spec(folder))
        except DojoflowError as exc:
            broken[task_id] = exc
    return specs, broken


def list_tasks() -> list[TaskSpec]:
    """The registered tasks whose specs load; a broken folder does not hide the others (``load_all`` says
    why it is broken, ``get_task`` raises its error)."""
    return load_all()[0]


def get_task(task_id: str) -> TaskSpec:
    """Load one task by id, or fail listing the known ids."""
    folders = task_folders()
    if task_id not in folders:
        raise UnknownTaskError(f"unknown task '{task_id}'; known tasks: {', '.join(sorted(folders))}")
    return load_spec(folders[task_id])
