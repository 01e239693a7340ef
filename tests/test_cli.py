"""The command line as a user runs it: subprocesses of the installed ``dojoflow`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DOJOFLOW = str(Path(sys.executable).parent / "dojoflow")


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([DOJOFLOW, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())


COMMANDS = {"run", "demo", "grade", "medals", "report", "export", "contamination", "serve", "deploy", "ui", "tasks",
            "cache", "sandbox", "sweep", "episodes", "agents", "synth"}


def test_help_lists_every_command():
    import re

    out = _run("--help").stdout
    listed = {m.group(1) for m in re.finditer(r"^│ ([a-z][a-z-]*) ", out, re.MULTILINE)}
    assert listed == COMMANDS


def test_light_commands_do_not_import_the_orchestration_stack():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom dojoflow.cli import app\n"
            "r = CliRunner().invoke(app, ['tasks', 'list', '--json'])\nassert r.exit_code == 0, r.output\n"
            "heavy = [m for m in ('prefect', 'mlflow', 'pandas', 'sklearn') if m in sys.modules]\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_tasks_list_json():
    tasks = json.loads(_run("tasks", "list", "--json").stdout)
    assert {t["id"] for t in tasks} >= {"breast-cancer", "digits", "penguins-body-mass"}
    assert all(t["leaderboard"] == "reference" for t in tasks)


def test_unknown_task_is_a_clean_error():
    proc = _run("tasks", "show", "no-such-task")
    assert proc.returncode == 2 and "unknown task 'no-such-task'" in proc.stderr and "Traceback" not in proc.stderr


def test_grade_reports_malformed_submission(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,wrong\n1,2\n")
    proc = _run("grade", "--task", "digits", str(bad), "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and not data["valid"]
    assert any("missing columns: digit" in e for e in data["errors"])
    assert "Traceback" not in proc.stderr


def test_medals_json_on_a_real_leaderboard(tmp_path):
    from conftest import SHARED_DATA

    board = SHARED_DATA / "mlebench-leaderboards" / "spaceship-titanic.csv"
    if not board.exists():
        pytest.skip("../shared/data not present")
    data = json.loads(_run("medals", "--leaderboard", str(board), "--score", "0.81", "--json").stdout)
    assert set(data) >= {"gold_threshold", "silver_threshold", "bronze_threshold", "median_threshold", "medal",
                         "above_median", "human_rank", "position", "num_teams", "lower_is_better"}
    assert data["lower_is_better"] is False and data["medal"] == "bronze"


@pytest.mark.slow  # tens of seconds on 2 cores: CI runs it with -m slow
@pytest.mark.integration
def test_run_json_through_prefect():
    proc = _run("run", "--task", "breast-cancer", "--agent", "baseline", "--max-steps", "3", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    assert data["valid"] is True
    for key in ("valid", "score", "medal", "above_median", "human_rank", "mlflow_run_id", "flow_run_id"):
        assert key in data
    assert data["flow_run_id"] and data["mlflow_run_id"]


@pytest.mark.parametrize("backend", ["bwrap", "local"])
def test_sandbox_run_json(tmp_path, backend):
    from dojoflow.infra.sandbox.bwrap import bwrap_available

    if backend == "bwrap" and not bwrap_available()[0]:
        pytest.skip(f"bubblewrap unavailable: {bwrap_available()[1]}")
    script = tmp_path / "step.py"
    script.write_text("import os, sys\nprint(sorted(os.listdir('data')))\nprint('oops', file=sys.stderr)\n")
    proc = _run("sandbox", "run", "--backend", backend, "--task", "digits", "--json", str(script))
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and data["exit_code"] == 0 and not data["timed_out"] and not data["oom"]
    assert "train.csv" in data["stdout"] and "sample_submission.csv" in data["stdout"] and data["stderr"] == "oops\n"
    assert data["duration_s"] > 0 and data["isolated"] == (backend == "bwrap")


def test_sandbox_run_times_out(tmp_path):
    script = tmp_path / "loop.py"
    script.write_text("while True:\n    pass\n")
    proc = _run("sandbox", "run", "--timeout", "1.5", "--json", str(script), timeout=60)
    data = json.loads(proc.stdout)
    assert proc.returncode == 1 and data["timed_out"] and data["duration_s"] < 10
