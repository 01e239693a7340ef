"""The prepared-data cache: a preparation killed midway, cache ls / prune, progress reporting."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dojoflow.cli import app
from dojoflow.tasks_catalog.preparation import (
    MANIFEST,
    cache_entries,
    cache_key,
    prepare_task,
    prune_cache,
    verify,
)
from dojoflow.tasks_catalog.registry import BUILTIN_DIR
from dojoflow.tasks_catalog.spec import load_spec

SLOW_PREPARE = '''
"""A fake task whose preparation is slow: it writes part of its files, then waits (SLOW_TASK_SECONDS)."""
import os
import time
from pathlib import Path

import pandas as pd

from dojoflow.tasks_catalog.preparation import report_progress, write_standard_split


def prepare(spec, public_dir: Path, private_dir: Path) -> None:
    frame = pd.DataFrame({"x": range(100), "y": [float(i % 7) for i in range(100)]})
    (public_dir / "partial.txt").write_text("started")
    report_progress(1, 3, "wrote the first file")
    time.sleep(float(os.environ.get("SLOW_TASK_SECONDS", "0")))
    write_standard_split(frame, spec, public_dir, private_dir)
    report_progress(3, 3, "done")
'''


def slow_task(tmp_path: Path) -> Path:
    folder = tmp_path / "tasks" / "slow-task"
    shutil.copytree(BUILTIN_DIR / "penguins-body-mass", folder)
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    spec.update(id="slow-task", title="A slow fake task")
    spec["submission"]["target_columns"] = ["y"]
    (folder / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (folder / "prepare.py").write_text(SLOW_PREPARE)
    return folder


_WORKER = """
import sys
from pathlib import Path
from dojoflow.tasks_catalog.preparation import prepare_task
from dojoflow.tasks_catalog.spec import load_spec
prepare_task(load_spec(Path(sys.argv[1])), Path(sys.argv[2]))
print("finished")
"""


def test_killed_preparation_then_reprepare_gives_a_correct_entry(tmp_path):
    folder = slow_task(tmp_path)
    data = tmp_path / "data"
    spec = load_spec(folder)
    env = {**os.environ, "SLOW_TASK_SECONDS": "60"}
    proc = subprocess.Popen([sys.executable, "-c", _WORKER, str(folder), str(data)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not list((data / "slow-task").glob(".tmp-*/public/partial.txt")):
            time.sleep(0.05)
        assert list((data / "slow-task").glob(".tmp-*/public/partial.txt")), "the preparation never started"
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # midway: files half written, no manifest
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    key = cache_key(spec)
    assert not (data / "slow-task" / key).exists()
    leftovers = list((data / "slow-task").glob(".tmp-*"))
    assert len(leftovers) == 1

    # the leftover is listed, and pruning (dry run first) removes it
    entries = cache_entries(data, {"slow-task": key})
    assert [(e.temporary, e.complete, e.current) for e in entries] == [(True, False, False)]
    assert [e.path for e in prune_cache(data, {"slow-task": key}, dry_run=True)] == leftovers
    assert leftovers[0].exists()

    # re-preparing (fast now) gives a complete, verified entry
    prepared = prepare_task(spec, data)
    assert prepared.cache_hit is False and prepared.key == key
    verify(prepared)
    manifest = (prepared.root / MANIFEST).read_text()
    assert "answers.csv" in manifest and "train.csv" in manifest
    assert prepare_task(spec, data).cache_hit is True

    removed = prune_cache(data, {"slow-task": key})
    assert [e.path for e in removed] == leftovers and not leftovers[0].exists()
    assert [e.current for e in cache_entries(data, {"slow-task": key})] == [True]


def test_cache_ls_and_prune_of_stale_entries(tmp_path, monkeypatch):
    folder = slow_task(tmp_path)
    data = tmp_path / "home" / "data"
    monkeypatch.setenv("DOJOFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOJOFLOW_TASK_PATH", str(tmp_path / "tasks"))
    old = prepare_task(load_spec(folder), data)
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    spec["split"]["seed"] = 3
    (folder / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    new = prepare_task(load_spec(folder), data)
    assert old.key != new.key

    runner = CliRunner()
    listed = runner.invoke(app, ["cache", "ls", "--json"])
    assert listed.exit_code == 0, listed.output
    import json

    rows = {r["key"]: r for r in json.loads(listed.output)}
    assert rows[new.key]["current"] is True and rows[old.key]["current"] is False
    assert rows[new.key]["task"] == "slow-task" and rows[new.key]["size_bytes"] > 0 and rows[new.key]["created"]
    table = runner.invoke(app, ["cache", "ls"])
    assert table.exit_code == 0 and "stale" in table.output and "current" in table.output

    dry = runner.invoke(app, ["cache", "prune", "--dry-run"])
    assert dry.exit_code == 0 and "would remove 1 entries" in dry.output and old.root.exists()
    done = runner.invoke(app, ["cache", "prune"])
    assert done.exit_code == 0 and "removed 1 entries" in done.output
    assert not old.root.exists() and new.root.exists()


def test_progress_callback_reports_preparation(tmp_path):
    folder = slow_task(tmp_path)
    calls = []
    prepare_task(load_spec(folder), tmp_path / "data", progress=lambda d, t, m: calls.append((d, t, m)))
    messages = [m for _, _, m in calls]
    assert messages[0] == "preparing slow-task" and "wrote the first file" in messages
    assert calls[-1][:2] == (1, 1)
    # no listener outside a preparation
    from dojoflow.tasks_catalog.preparation import _progress

    assert _progress == []


def test_prepare_with_progress_bar(tmp_path):
    from rich.console import Console

    from dojoflow.cli.tasks import prepare_with_progress

    folder = slow_task(tmp_path)
    console = Console(record=True, width=120)
    results = prepare_with_progress([load_spec(folder)], tmp_path / "data", console=console)
    assert results[0].cache_hit is False
    assert "slow-task: prepared" in console.export_text()


@pytest.mark.parametrize("dry_run", [True, False])
def test_prune_keeps_a_temporary_dir_that_is_being_written(tmp_path, dry_run):
    import fcntl

    task_dir = tmp_path / "data" / "t"
    busy = task_dir / ".tmp-abc123-x"
    busy.mkdir(parents=True)
    with (task_dir / "abc123.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert prune_cache(tmp_path / "data", {}, dry_run=dry_run) == []
    assert busy.exists()
