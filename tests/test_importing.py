"""Shared import machinery: competition code loaded as a package, each competition imported on its own."""

from __future__ import annotations

import pytest

from dojoflow.errors import BenchmarkImportError
from dojoflow.tasks_catalog.importing import (
    MissingModuleError,
    load_package_function,
    load_package_module,
    run_each,
)


def test_relative_imports_and_sibling_modules_work(tmp_path):
    folder = tmp_path / "leaf-classification"
    folder.mkdir()
    (folder / "classes.py").write_text("CLASSES = ['a', 'b']\n")
    (folder / "grade.py").write_text("from .classes import CLASSES\n\ndef grade(s, a):\n    return len(CLASSES)\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "classes.py").write_text("CLASSES = ['x']\n")
    (other / "grade.py").write_text("from .classes import CLASSES\n\ndef grade(s, a):\n    return len(CLASSES)\n")
    assert load_package_function(folder, "grade", "grade")(None, None) == 2
    assert load_package_function(other, "grade", "grade")(None, None) == 1  # no collision between folders


def test_a_library_beside_the_task_is_used_and_a_missing_module_is_named(tmp_path):
    lib = tmp_path / "lib" / "fakebenchlib"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("VALUE = 7\n")
    folder = tmp_path / "comp"
    folder.mkdir()
    (folder / "grade.py").write_text("from fakebenchlib import VALUE\n")
    assert load_package_module(folder, "grade", library_path=tmp_path / "lib").VALUE == 7
    (folder / "broken.py").write_text("import no_such_module_xyz\n")
    with pytest.raises(MissingModuleError, match="no_such_module_xyz.*pip install extra-xyz"):
        load_package_module(folder, "broken", install_hint=lambda m: "pip install extra-xyz")


def test_each_item_fails_on_its_own_with_one_line():
    def work(item: str) -> str:
        if item == "bad":
            raise ValueError("first line\nsecond line")
        if item == "exit":
            raise SystemExit(3)
        if item == "ours":
            raise BenchmarkImportError("no raw data")
        return item.upper()

    summary = run_each(["a", "bad", "exit", "ours", "b"], work, str, lambda r: r)
    assert [o.id for o in summary.imported] == ["a", "b"]
    assert summary.failed == {"bad": "ValueError: first line", "exit": "SystemExit: 3", "ours": "no raw data"}
    assert summary.exit_code == 1
    assert summary.rows()[0] == ("a", "imported", "A")
    assert summary.table().row_count == 5
    assert run_each(["a"], work, str).exit_code == 0
