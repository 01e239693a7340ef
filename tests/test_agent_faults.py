"""No agent behaviour can lose an episode: whatever the code leaves in the workspace, and a full disk, fail
a step with a clear message; the episode goes on, ends, and is recorded."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from scripted_agent import ScriptedAgent

from dojoflow.flows.episode import EpisodeConfig, drive_episode
from dojoflow.infra.sandbox.bwrap import bwrap_available

COPY_SAMPLE = "import shutil\nshutil.copy('data/sample_submission.csv', 'submission.csv')\n"
BACKENDS = ["warm-bwrap", "bwrap", "local"] if bwrap_available()[0] else ["local"]


def run(codes: list[str], backend: str, settings, **config):
    agent = ScriptedAgent(codes)
    cfg = EpisodeConfig(task_id="penguins-body-mass", agent="scripted", max_steps=len(codes) + 1, sandbox=backend,
                        **config)
    return drive_episode(cfg, settings=settings, agent=agent)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow  # over ~8 s on 2 cores: CI runs it with -m slow
def test_things_in_the_harness_s_way_fail_a_step_not_the_episode(settings, backend):
    codes = [
        COPY_SAMPLE,  # 0: a valid submission
        "import os\nos.makedirs('submission.csv')\nopen('submission.csv/part-00000.csv', 'w').write('id\\n')\n",
        "import os\nos.makedirs('step_003.py')\n",  # 2: a directory where the next step's script goes
        "print('never runs')\n",  # 3
        "import shutil, os\nshutil.rmtree('step_003.py')\nshutil.rmtree('tmp', ignore_errors=True)\n"
        "open('tmp', 'w').write('not a folder')\nos.symlink('/etc/passwd', 'data_link')\n",  # 4
        "import os, tempfile\nassert os.path.isdir('tmp')\n" + COPY_SAMPLE,  # 5: tmp/ is back, works again
    ]
    result = run(codes, backend, settings)
    steps = result.trajectory
    assert [s["valid_submission"] for s in steps[:6]] == [True, False, False, None, False, True], \
        [(s["valid_submission"], s["errors"]) for s in steps]
    assert "is a directory, as Spark and Dask write CSVs" in steps[1]["errors"][0]
    assert any("a directory named step_003.py" in e for e in steps[3]["errors"])
    assert steps[6]["action"]["type"] == "submit" and result.valid and result.steps == 7
    assert (Path(result.episode_dir) / "trajectory.jsonl").is_file()
    assert (Path(result.episode_dir) / "steps" / "001" / "submission.csv.directory" / "part-00000.csv").is_file()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fifo_submission_does_not_block_the_harness(settings, backend):
    result = run(["import os\nos.mkfifo('submission.csv')\n", COPY_SAMPLE], backend, settings)
    first = result.trajectory[0]
    assert first["valid_submission"] is False
    assert any("fifo" in e or "not found" in e for e in first["errors"]), first["errors"]
    assert result.valid and result.trajectory[1]["valid_submission"] is True


@pytest.fixture
def small_home(tmp_path, monkeypatch):
    """A DOJOFLOW_HOME on a 48 MiB tmpfs, so that agent code can fill its disk (needs root to mount)."""
    home = tmp_path / "small-home"
    home.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(home)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.strip()}")
    monkeypatch.setenv("DOJOFLOW_HOME", str(home))
    try:
        yield home
    finally:
        subprocess.run(["umount", "-l", str(home)], check=False)


@pytest.mark.slow  # over ~8 s on 2 cores: CI runs it with -m slow
def test_a_full_disk_fails_the_step_and_the_episode_is_still_recorded(small_home):
    from dojoflow.config import get_settings
    from dojoflow.storage.results import load_results

    settings = get_settings()
    fill = ("chunk = b'x' * (1 << 20)\nwith open('ballast.bin', 'wb') as f:\n"
            "    try:\n        while True:\n            f.write(chunk)\n"
            "    except OSError as exc:\n        print('disk full as planned:', exc)\n"
            "print('y' * 200000)\n")  # more output than the full disk can hold
    result = run([COPY_SAMPLE, fill, COPY_SAMPLE], "warm-bwrap" if "bwrap" in BACKENDS else "local", settings,
                 track=True)
    assert result.valid and result.final_step in (0, 2)
    assert any("disk" in e for s in result.trajectory for e in s["errors"]) or \
        any("full" in (s["observation"] or "") for s in result.trajectory)
    workspace = Path(result.episode_dir) / "workspace"
    assert not (workspace / "ballast.bin").exists(), "the workspace of a full-disk episode is emptied"
    rows = load_results(settings.results_dir)
    assert result.episode_id in set(rows["episode_id"])
    assert result.mlflow_run_id or result.tracking_error  # recorded, or parked for a later flush
    usage = shutil.disk_usage(small_home)
    assert usage.free > 8 * 1024 * 1024
    again = run([COPY_SAMPLE], "local", settings, track=False)  # the next episode starts clean and works
    assert again.valid


def test_a_harness_write_into_a_foreign_object_is_refused_not_followed(tmp_path):
    from dojoflow.dojo.workspace_files import WorkspaceProblem, write_harness_file

    target = tmp_path / "outside.txt"
    target.write_text("keep")
    link = tmp_path / f"step-{uuid.uuid4().hex}.py"
    os.symlink(target, link)
    with pytest.raises(WorkspaceProblem, match="symlink"):
        write_harness_file(link, "print(1)\n")
    assert target.read_text() == "keep"


@pytest.mark.skipif("bwrap" not in BACKENDS, reason="bubblewrap unavailable")
def test_a_workspace_with_too_many_files_fails_its_steps_until_cleaned(tmp_path, monkeypatch):
    """The after-step check walks the workspace; past a cap (200,000 entries; 500 here) the step fails with
    a message instead of costing the harness seconds per step."""
    from dojoflow.infra.sandbox import ExecutionLimits, ExecutionRequest, get_backend, python_command
    from dojoflow.infra.sandbox import workspace as ws_module

    monkeypatch.setattr(ws_module, "MAX_WORKSPACE_ENTRIES", 500)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "many.py").write_text("import os\nos.makedirs('junk', exist_ok=True)\n"
                                "[open(f'junk/{i}', 'w').close() for i in range(800)]\n")
    (ws / "clean.py").write_text("import shutil\nshutil.rmtree('junk')\nprint('clean')\n")
    backend = get_backend("bwrap")
    limits = ExecutionLimits(timeout_s=60)
    many = backend.run(ExecutionRequest(python_command("many.py"), ws, None, limits))
    assert many.error and "more than 500 files and folders" in many.error
    clean = backend.run(ExecutionRequest(python_command("clean.py"), ws, None, limits))
    assert clean.ok and clean.stdout.strip() == "clean"
