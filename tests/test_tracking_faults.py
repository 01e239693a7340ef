"""MLflow faults do not lose episodes: an unreachable tracking server fails fast and parks the run in the
outbox, a later flush records it exactly once, and two first runs on a fresh home do not race."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dojoflow.config import get_settings


def _dead_uri() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_an_unreachable_server_parks_the_run_and_a_flush_records_it_once(tmp_path, monkeypatch):
    from dojoflow.dojo.actions import Action
    from dojoflow.flows.episode import EpisodeConfig, drive_episode
    from dojoflow.storage.outbox import pending
    from dojoflow.storage.recording import flush_pending
    from dojoflow.storage.results import load_results
    from dojoflow.storage.tracking import _client

    monkeypatch.setenv("DOJOFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOJOFLOW_TRACKING_URI", _dead_uri())

    class CopySample:
        name, last_step_info = "copy", {}

        def reset(self, observation, seed):
            self.done = False

        def act(self, observation):
            if self.done:
                return Action("submit")
            self.done = True
            return Action("execute_code", code="import shutil\nshutil.copy('data/sample_submission.csv', "
                                               "'submission.csv')\n")

    started = time.monotonic()
    result = drive_episode(EpisodeConfig(task_id="iris-species", agent="copy", max_steps=3, sandbox="local"),
                           agent=CopySample())
    assert result.timings["record"] < 30, "a dead tracking server must fail fast"
    assert result.mlflow_run_id is None and "does not answer" in result.tracking_error
    settings = get_settings()
    assert result.episode_id in set(load_results(settings.results_dir)["episode_id"])  # the row is there
    batches = pending(settings.outbox_dir)
    assert [b.name for b in batches] == [f"{result.episode_id}.tracking"]
    assert time.monotonic() - started < 120

    monkeypatch.setenv("DOJOFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}")
    settings = get_settings()
    assert flush_pending(settings) == (1, 0) and not pending(settings.outbox_dir)
    client = _client(settings)
    runs = client.search_runs([client.get_experiment_by_name("dojoflow").experiment_id],
                              f"tags.`dojoflow.episode_id` = '{result.episode_id}'")
    assert len(runs) == 1 and runs[0].data.metrics["valid"] == 1.0
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"steps", "trajectory.jsonl"} <= artifacts

    # a second delivery of the same episode (a re-flush, a retried record) creates no second run
    from dojoflow.storage.recording import TrackedRun, record_tracking

    again, error = record_tracking(settings, TrackedRun(result.episode_id, "x", {}, {}, [],
                                                        {"dojoflow.episode_id": result.episode_id}))
    assert error is None and again == runs[0].info.run_id


RECORD_ONE = """
import sys
from pathlib import Path
from dojoflow.config import get_settings
from dojoflow.storage.tracking import record_run
print(record_run(get_settings(), sys.argv[1], {"p": 1}, {"m": 1.0}, [], {"dojoflow.episode_id": sys.argv[1]}, {},
                 episode_id=sys.argv[1]))
"""


@pytest.mark.slow  # tens of seconds on 2 cores: CI runs it with -m slow
def test_two_first_runs_on_a_fresh_home_do_not_race(tmp_path):
    for attempt in range(2):
        home = tmp_path / f"home{attempt}"
        env = {"DOJOFLOW_HOME": str(home), "PATH": "/usr/bin:/bin"}
        procs = [subprocess.Popen([sys.executable, "-c", RECORD_ONE, f"ep{attempt}-{i}"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
        outputs = [p.communicate(timeout=180) for p in procs]
        for proc, (out, err) in zip(procs, outputs):
            assert proc.returncode == 0, err[-2000:]
            assert len(out.strip()) == 32  # a run id
    assert Path(home / "mlflow.db").is_file()
