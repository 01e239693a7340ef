"""Task preparation is bounded and checked: it runs in a child process with a timeout, a preparation that
exits or loops says so in one error, and what it produced is checked before it is cached."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dojoflow.errors import PreparationError
from dojoflow.tasks_catalog.preparation import prepare_task
from dojoflow.tasks_catalog.registry import BUILTIN_DIR
from dojoflow.tasks_catalog.spec import load_spec

DOJOFLOW = str(Path(sys.executable).parent / "dojoflow")


def task_folder(root: Path, name: str, prepare: str | None = None, **spec_changes) -> Path:
    folder = root / name
    shutil.copytree(BUILTIN_DIR / "penguins-body-mass", folder)
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    spec.update(id=name, **spec_changes)
    (folder / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    if prepare is not None:
        (folder / "prepare.py").write_text(prepare)
    return folder


def test_a_preparation_that_loops_forever_is_stopped(tmp_path):
    folder = task_folder(tmp_path, "loops", "def prepare(spec, public, private):\n    while True:\n        pass\n",
                         resources={"prepare_timeout_s": 3})
    started = time.monotonic()
    with pytest.raises(PreparationError, match="took longer than 3 s"):
        prepare_task(load_spec(folder), tmp_path / "data")
    assert time.monotonic() - started < 30
    assert not list((tmp_path / "data" / "loops").glob(".tmp-*")), "the half-written entry is removed"


def test_a_preparation_that_exits_the_process_is_an_error_with_its_output(tmp_path):
    folder = task_folder(tmp_path, "exits", "import sys\ndef prepare(spec, public, private):\n"
                                            "    print('giving up now')\n    sys.exit(3)\n")
    with pytest.raises(PreparationError, match=r"exit status 3(.|\n)*giving up now"):
        prepare_task(load_spec(folder), tmp_path / "data")


WRONG_COLUMNS = """
def prepare(spec, public, private):
    (public / "train.csv").write_text("id,x,weight\\n1,0.5,3\\n")
    (public / "test.csv").write_text("id,x\\n2,0.7\\n")
    (public / "sample_submission.csv").write_text("id,weight\\n2,3\\n")
    (private / "answers.csv").write_text("id,weight\\n2,4\\n")
    (private / "leaderboard_split.csv").write_text("id,part\\n2,public\\n")
"""


def test_wrong_prepared_columns_fail_at_preparation(tmp_path):
    folder = task_folder(tmp_path, "wrong-columns", WRONG_COLUMNS)
    with pytest.raises(PreparationError, match="lacks the columns body_mass_g"):
        prepare_task(load_spec(folder), tmp_path / "data")


def test_a_bad_leaderboard_fails_at_preparation(tmp_path):
    folder = task_folder(tmp_path, "bad-board")
    (folder / "leaderboard.csv").write_text("rank,team,score\n1,a,not-a-number\n")
    with pytest.raises(PreparationError, match="leaderboard cannot be used"):
        prepare_task(load_spec(folder), tmp_path / "data")


def test_prepare_cli_reports_a_looping_task_and_exits_2(tmp_path):
    task_folder(tmp_path / "tasks", "loops", "def prepare(spec, public, private):\n    while True:\n        pass\n",
                resources={"prepare_timeout_s": 2})
    env = {**os.environ, "DOJOFLOW_TASK_PATH": str(tmp_path / "tasks"), "DOJOFLOW_HOME": str(tmp_path / "home")}
    proc = subprocess.run([DOJOFLOW, "tasks", "prepare", "loops"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2 and "took longer than 2 s" in proc.stderr and "Traceback" not in proc.stderr


def test_one_broken_task_folder_does_not_break_the_list(tmp_path):
    good = task_folder(tmp_path / "tasks", "fine-task")
    broken = task_folder(tmp_path / "tasks", "broken-task")
    (broken / "task.yaml").write_text("id: broken-task\nmetric: nonsense\n")
    env = {**os.environ, "DOJOFLOW_TASK_PATH": str(tmp_path / "tasks")}
    proc = subprocess.run([DOJOFLOW, "tasks", "list", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json

    ids = {t["id"] for t in json.loads(proc.stdout)}
    assert good.name in ids and "broken-task" not in ids and "digits" in ids
    assert "skipped task 'broken-task'" in proc.stderr and "field" in proc.stderr
