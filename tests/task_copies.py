"""Copies of built-in tasks whose preparation fails, for the tests of failed episodes (one place, three users)."""

from __future__ import annotations

import shutil
from pathlib import Path

BUILTIN = Path(__file__).resolve().parents[1] / "dojoflow" / "tasks_catalog" / "builtin"
PREPARE_SIGNATURE = "def prepare(spec, public_dir: Path, private_dir: Path) -> None:\n"


def penguins_copy_failing_prepare(root: Path, task_id: str, first_lines: str) -> Path:
    """``penguins-body-mass`` copied to ``root/task_id`` with ``first_lines`` (indented code) run first in its
    prepare(); the folder of the copy."""
    folder = root / task_id
    shutil.copytree(BUILTIN / "penguins-body-mass", folder)
    spec = folder / "task.yaml"
    spec.write_text(spec.read_text().replace("id: penguins-body-mass", f"id: {task_id}"))
    prepare = folder / "prepare.py"
    source = prepare.read_text()
    assert PREPARE_SIGNATURE in source, "penguins-body-mass's prepare() changed its signature"
    prepare.write_text(source.replace(PREPARE_SIGNATURE, PREPARE_SIGNATURE + first_lines))
    return folder
