"""How an episode ended, as the CLI says it (issue 18): the end reason on stderr and in ``--json``; exit 0
when the episode was graded whatever the agent's endpoint did; a non-zero exit with the failed episode's
record when the harness could not finish it; an unknown agent option in one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from task_copies import penguins_copy_failing_prepare

DOJOFLOW = str(Path(sys.executable).parent / "dojoflow")


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([DOJOFLOW, *args], capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # over ~8 s on 2 cores: CI runs it with -m slow
def test_an_llm_endpoint_that_fails_is_the_agents_end_exit_0_with_the_reason(tmp_path):
    proc = _run("run", "--task", "iris-species", "--agent", "react", "--model", "m", "--base-url",
                f"http://127.0.0.1:{_dead_port()}/v1", "--agent-option", "max_retries=0", "--no-prefect", "--json",
                DOJOFLOW_HOME=str(tmp_path / "home"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["status"] == "completed" and "LLM endpoint failed" in result["end_reason"]
    assert "ConnectError" in result["end_reason"] and result["llm_errors"] == 1 and result["model"] == "m"
    assert "no-submission.csv" not in json.dumps(result)  # no file nobody was asked to write
    assert result["errors"] == ["no valid submission was made during the episode"]
    assert f"episode {result['episode_id']} ended: LLM endpoint failed" in " ".join(proc.stderr.split())
    assert result["episode_id"].startswith("react--iris-species--s0--")
    assert Path(result["episode_dir"]).name == result["episode_id"]
    assert (Path(result["episode_dir"]) / "trajectory.md").is_file()


def test_a_harness_failure_exits_non_zero_with_the_failed_record(tmp_path):
    root = tmp_path / "tasks"
    penguins_copy_failing_prepare(root, "broken-penguins", "    raise KeyError('no_such_column')\n")
    proc = _run("run", "--task", "broken-penguins", "--no-prefect", "--json", DOJOFLOW_HOME=str(tmp_path / "home"),
                DOJOFLOW_TASK_PATH=str(root))
    assert proc.returncode == 2, proc.stderr[-2000:]
    failed = json.loads(proc.stdout)
    assert failed["status"] == "failed" and failed["error_class"] == "task"
    assert "no_such_column" in failed["end_reason"] and "FAILED (task error)" in proc.stderr
    assert "Traceback" not in proc.stderr.split("error:")[-1]
    rows = list((tmp_path / "home" / "results").glob("*.parquet"))
    assert [p.stem for p in rows] == [failed["episode_id"]]  # the failed episode has its row


def test_an_unknown_agent_option_is_one_line(tmp_path):
    proc = _run("run", "--task", "iris-species", "--agent", "react", "--model", "m", "--agent-option",
                "num_draftz=3", "--no-prefect", DOJOFLOW_HOME=str(tmp_path / "home"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown options num_draftz" in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2
