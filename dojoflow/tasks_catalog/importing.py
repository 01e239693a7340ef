"""Shared machinery of the benchmark importers (MLE-bench, MLE-Dojo, ...).

Two things every importer of third-party competition folders needs, kept here so that each importer gets
them the same way:

- **Competition code as a package.** A competition folder's ``prepare.py`` and ``grade.py`` import their
  sibling modules (``from .classes import CLASSES``). Loaded as loose files, that fails with "attempted
  relative import with no known parent package". :func:`load_package_module` loads the folder as a package
  of its own (a unique name per folder, so two competitions' ``classes`` never collide) and imports one of
  its modules from it, so relative imports and sibling modules work as they do in the benchmark's checkout.
  A library the code imports by absolute name (``mlebench.grade_helpers``) is found where it is installed,
  else in a copy the importer put beside the task (``library_path``).
- **Each competition on its own.** One broken competition must not abort a batch import: :func:`run_each`
  imports each item, turning any exception into a one-line reason, and :class:`ImportSummary` holds the
  outcome of every item, renders the summary table the CLI prints and gives the exit status (non-zero when
  any failed).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

PACKAGE_PREFIX = "dojoflow_competition_"
IMPORT_PREPARE_TIMEOUT_S = 1800.0  # the competition's preparation at import (learning its submission columns)


# -- per-competition outcomes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportOutcome:
    """What became of one competition: imported (``ok``) or failed with a one-line ``reason``.

    ``detail`` is a short note shown in the summary table (the submission columns, "no raw data", ...);
    ``result`` is the importer's own record of an imported competition.
    """

    id: str
    ok: bool
    reason: str = ""
    detail: str = ""
    result: Any = None


@dataclass
class ImportSummary:
    """The outcomes of one batch import, in order."""

    outcomes: list[ImportOutcome] = field(default_factory=list)

    @property
    def imported(self) -> list[ImportOutcome]:
        """The competitions that imported."""
        return [o for o in self.outcomes if o.ok]

    @property
    def failed(self) -> dict[str, str]:
        """Per failed competition, its one-line reason."""
        return {o.id: o.reason for o in self.outcomes if not o.ok}

    @property
    def exit_code(self) -> int:
        """0 when every competition imported, 1 when any failed (a partly failed import is a failure)."""
        return 1 if self.failed else 0

    def rows(self) -> list[tuple[str, str, str]]:
        """(id, "imported"/"failed", detail or reason) per competition, for a table."""
        return [(o.id, "imported" if o.ok else "failed", o.detail if o.ok else o.reason) for o in self.outcomes]

    def table(self, title: str = "import summary"):
        """A rich table of :meth:`rows` with a count of each status in its caption."""
        from rich.table import Table

        table = Table(title=title, caption=f"{len(self.imported)} imported, {len(self.failed)} failed")
        for name in ("competition", "status", "details"):
            table.add_column(name, overflow="fold")
        for cid, status, text in self.rows():
            table.add_row(cid, f"[green]{status}[/]" if status == "imported" else f"[red]{status}[/]", text)
        return table

    def to_dict(self) -> dict:
        """JSON-ready: imported ids with their details, failed ids with their reasons."""
        return {"imported": {o.id: o.detail for o in self.imported}, "failed": self.failed,
                "exit_code": self.exit_code}


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type (unless it is one of dojoflow's own, whose message says it all)
    and the first line of its message."""
    from dojoflow.errors import DojoflowError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, DojoflowError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_each(items: Iterable[T], work: Callable[[T], R], id_of: Callable[[T], str],
             detail_of: Callable[[R], str] = lambda _r: "") -> ImportSummary:
    """``work(item)`` for every item, each on its own: any exception (a competition's code may raise
    anything, even ``SystemExit``) becomes that item's one-line reason and the batch goes on.
    ``KeyboardInterrupt`` still stops the batch."""
    summary = ImportSummary()
    for item in items:
        cid = id_of(item)
        try:
            result = work(item)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - third-party code: every failure is this item's alone
            summary.outcomes.append(ImportOutcome(cid, False, one_line(exc)))
            continue
        summary.outcomes.append(ImportOutcome(cid, True, detail=detail_of(result), result=result))
    return summary


def is_public_id(value: Any, fraction: float) -> bool:
    """Whether a test row is in the public part of an imported competition's answers: ``sha256(id as text)``
    as a fraction of 2**256 below ``fraction``. Every importer splits this way, so a competition imported
    from two benchmarks splits its rows the same way, and a re-import gives the same split."""
    digest = hashlib.sha256(str(value).encode()).digest()
    return int.from_bytes(digest, "big") / float(1 << 256) < fraction


@contextmanager
def prepared_at_import(staging: Path, dest: Path, raw: Path, cid: str, entry: str, label: str) -> Iterator[Path]:
    """Run a staged competition's own preparation on ``raw`` at import time (in a sandboxed child process, as
    every preparation: ``preparation.run_preparation_child`` with ``entry``) into a scratch folder under
    ``dest``; yields that folder (its ``public/`` and ``private/``), removed afterwards. Importers read the
    submission columns from it."""
    import tempfile

    from dojoflow.tasks_catalog.preparation import run_preparation_child

    with tempfile.TemporaryDirectory(prefix=f".tmp-prepare-{cid}-", dir=dest) as scratch:
        root = Path(scratch)
        (root / "public").mkdir()
        (root / "private").mkdir()
        run_preparation_child(staging, root / "public", root / "private", root / "prepare.log",
                              IMPORT_PREPARE_TIMEOUT_S, raw, entry=entry, label=label)
        yield root


# -- competition code as a package -------------------------------------------------------------------------
def package_name(folder: Path) -> str:
    """The unique package name a competition folder is loaded under (its name plus a hash of its path)."""
    folder = Path(folder).resolve()
    stem = "".join(c if c.isalnum() else "_" for c in folder.name)
    return f"{PACKAGE_PREFIX}{stem}_{hashlib.sha1(str(folder).encode()).hexdigest()[:10]}"


class MissingModuleError(ImportError):
    """Competition code imports a module that is not installed; the message names it and the install."""


_supplied: dict[str, str] = {}  # library package name -> the library folder dojoflow put on sys.path for it


def _use_library(library_path: Path | None) -> None:
    """Make the packages in ``library_path`` importable, at the end of ``sys.path`` (an installed copy of the
    same library wins). A package loaded earlier from another task's library folder (which may be gone: an
    import's staging folder is renamed) is forgotten and found again in this one."""
    if library_path is None or not Path(library_path).is_dir():
        return
    folder = str(Path(library_path).resolve())
    for package in (p.name for p in Path(folder).iterdir() if (p / "__init__.py").is_file()):
        previous = _supplied.get(package)
        if previous == folder:
            continue
        if previous is not None or package not in sys.modules:
            for key in [k for k in sys.modules if k == package or k.startswith(package + ".")]:
                del sys.modules[key]
            if previous in sys.path:
                sys.path.remove(previous)
            _supplied[package] = folder
    if folder in _supplied.values() and folder not in sys.path:
        sys.path.append(folder)


def load_package_module(folder: Path, module: str, library_path: Path | None = None,
                        install_hint: Callable[[str], str] | None = None, fresh: bool = False) -> ModuleType:
    """Import ``module`` (``"grade"``) of the competition ``folder`` loaded as a package.

    Relative imports (``from .classes import X``) and sibling modules resolve inside ``folder``.
    ``library_path``: a folder holding libraries the code imports by absolute name, used when they are not
    installed. ``fresh``: forget an earlier load of this folder first (the folder's files changed).
    A missing module raises :class:`MissingModuleError` naming it, with ``install_hint(module name)``.
    """
    folder = Path(folder).resolve()
    if not (folder / f"{module}.py").is_file() and not (folder / module / "__init__.py").is_file():
        raise FileNotFoundError(f"{folder}: no module '{module}' ({module}.py not found)")
    _use_library(library_path)
    name = package_name(folder)
    if fresh:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
    if name not in sys.modules:
        init = folder / "__init__.py"
        spec = (importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
                if init.is_file() else importlib.util.spec_from_loader(name, loader=None, is_package=True))
        assert spec is not None
        package = importlib.util.module_from_spec(spec)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
        if init.is_file() and spec.loader is not None:
            try:
                spec.loader.exec_module(package)
            except BaseException:
                del sys.modules[name]
                raise
    try:
        return importlib.import_module(f"{name}.{module}")
    except ModuleNotFoundError as exc:
        missing = exc.name or str(exc)
        if missing.startswith(name):
            raise
        top = missing.split(".")[0]
        hint = install_hint(top) if install_hint else f"pip install {top}"
        raise MissingModuleError(f"{folder / (module + '.py')} imports '{missing}', which is not installed: "
                                 f"{hint}") from None


def load_package_function(folder: Path, module: str, function: str, library_path: Path | None = None,
                          install_hint: Callable[[str], str] | None = None) -> Callable:
    """``function`` of :func:`load_package_module`; a clear error when the module does not define it."""
    loaded = load_package_module(folder, module, library_path, install_hint)
    fn = getattr(loaded, function, None)
    if not callable(fn):
        raise AttributeError(f"{Path(folder) / (module + '.py')}: defines no function '{function}'")
    return fn


__all__ = ["IMPORT_PREPARE_TIMEOUT_S", "ImportOutcome", "ImportSummary", "MissingModuleError", "is_public_id",
           "load_package_function", "load_package_module", "one_line", "package_name", "prepared_at_import",
           "run_each"]
