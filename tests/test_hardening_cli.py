"""Bad input and unavailable services, as a user meets them on the command line: one clear line, a non-zero
exit, no traceback, nothing lost."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

DOJOFLOW = str(Path(sys.executable).parent / "dojoflow")


def _run(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([DOJOFLOW, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def _clean_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for needle in needles:
        assert needle in proc.stderr, proc.stderr[-1500:]


@pytest.mark.parametrize("steps", ["0", "-3"])
def test_a_step_budget_below_one_is_refused(steps):
    _clean_error(_run("run", "--task", "iris-species", "--max-steps", steps, "--no-prefect"), "max_steps must be")


def test_export_filters_are_checked_and_an_empty_export_says_why(tmp_path):
    _clean_error(_run("export", str(tmp_path / "x.parquet"), "--format", "sft", "--filter", "medal=platinum"),
                 "medal is one of")
    proc = _run("export", str(tmp_path / "x.parquet"), "--format", "sft", "--filter", "task=no-such-task",
                DOJOFLOW_HOME=str(tmp_path / "home"))
    assert proc.returncode == 1 and "no recorded episode matches task=no-such-task" in proc.stderr


def test_report_into_a_missing_folder_creates_it(tmp_path):
    from dojoflow.storage.results import write_result

    row = {"sweep_id": "", "episode_key": "", "episode_id": "e1", "agent": "a", "task": "t", "task_splits": "",
           "seed": 0, "valid": True, "score": 0.5, "higher_is_better": True, "medal": None, "gold": False,
           "any_medal": False, "above_median": False, "human_rank": 0.2, "steps": 1, "wall_time_s": 1.0,
           "tokens": 0, "cost_usd": 0.0, "integrity_passed": True, "leaderboard_provenance": "reference",
           "finished_at": "2026-01-01T00:00:00+00:00"}
    write_result(tmp_path / "results", row)
    target = tmp_path / "deep" / "er" / "report.md"
    proc = _run("report", "--results", str(tmp_path / "results"), "--markdown", str(target))
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert target.is_file()


def test_an_unreachable_prefect_server_is_one_line():
    proc = _run("run", "--task", "iris-species", "--max-steps", "2", timeout=120,
                PREFECT_API_URL=f"http://127.0.0.1:{_dead_port()}/api")
    _clean_error(proc, "does not answer", "PREFECT_API_URL")


def test_a_read_only_home_is_one_line(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(home)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        _clean_error(_run("tasks", "prepare", "iris-species", DOJOFLOW_HOME=str(home)), "cannot write",
                     "DOJOFLOW_HOME")
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


def test_sandbox_run_leaves_no_temporary_folder(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("print('hi')\n")
    before = set(Path(tempfile.gettempdir()).glob("dojoflow-sandbox-*"))
    proc = _run("sandbox", "run", "--backend", "local", str(script))
    assert proc.returncode == 0, proc.stderr
    assert set(Path(tempfile.gettempdir()).glob("dojoflow-sandbox-*")) == before


def test_prefect_telemetry_is_off(settings):
    from dojoflow.config import configure_prefect_environment

    configure_prefect_environment(settings)
    from prefect._internal.analytics.enabled import is_telemetry_enabled

    assert os.environ["DO_NOT_TRACK"] == "1" and is_telemetry_enabled() is False


@pytest.mark.slow  # tens of seconds on 2 cores: CI runs it with -m slow
@pytest.mark.parametrize("path", [["--no-prefect"], []], ids=["plain", "prefect"])
def test_sigterm_ends_a_run_promptly_and_keeps_its_partial_trajectory(tmp_path, path):
    """Inside a Prefect flow run SIGTERM arrives as Prefect's TerminationSignal, not KeyboardInterrupt: the
    episode must still keep its steps and end its MLflow run KILLED (not leave it RUNNING)."""
    import json
    import signal
    import time

    from mlflow.tracking import MlflowClient

    home = tmp_path / "home"
    proc = subprocess.Popen([DOJOFLOW, "run", "--task", "iris-species", "--agent", "baseline", "--max-steps", "6",
                             *path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "DOJOFLOW_HOME": str(home)})
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(home.glob("episodes/*/steps/001/code.py")):
        time.sleep(0.3)  # wait until the episode is well into its steps
    assert list(home.glob("episodes/*/steps/001/code.py")), "the episode never got going"
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "stopped by SIGTERM" in err and "Traceback" not in err
    assert time.monotonic() - started < 30
    trajectory = next(home.glob("episodes/*/trajectory.jsonl"))
    header = json.loads(trajectory.read_text().splitlines()[0])
    assert header["interrupted"] is True and header["steps"] >= 1
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [(r.info.status, r.data.tags.get("dojoflow.status")) for r in runs] == [("KILLED", "interrupted")]


def test_old_recorded_episodes_are_pruned_and_unrecorded_ones_kept(tmp_path):
    import time

    home = tmp_path / "home"
    for name, recorded in (("old-recorded", True), ("old-running", False), ("new-recorded", True)):
        (home / "episodes" / name / "workspace").mkdir(parents=True)
        (home / "episodes" / name / "workspace" / "big.bin").write_bytes(b"x" * 1000)
        (home / "episodes" / name / "trajectory.jsonl").write_text("{}\n")
        if recorded:
            (home / "results").mkdir(exist_ok=True)
            (home / "results" / f"{name}.parquet").write_bytes(b"")
    old = time.time() - 10 * 86400
    for name in ("old-recorded", "old-running"):
        os.utime(home / "episodes" / name, (old, old))
    env = {"DOJOFLOW_HOME": str(home)}
    dry = _run("episodes", "prune", "--older-than", "7d", "--dry-run", **env)
    assert dry.returncode == 0 and "would remove 1 episodes" in dry.stdout
    keep_steps = _run("episodes", "prune", "--older-than", "7d", "--workspaces-only", **env)
    assert keep_steps.returncode == 0 and (home / "episodes" / "old-recorded" / "trajectory.jsonl").is_file()
    assert not (home / "episodes" / "old-recorded" / "workspace").exists()
    os.utime(home / "episodes" / "old-recorded", (old, old))
    assert _run("episodes", "prune", "--older-than", "7d", **env).returncode == 0
    assert not (home / "episodes" / "old-recorded").exists()
    assert (home / "episodes" / "old-running").is_dir() and (home / "episodes" / "new-recorded").is_dir()
    _clean_error(_run("episodes", "prune", "--older-than", "soon", **env), "bad age")
