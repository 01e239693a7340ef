"""The example plugin package (examples/plugin, installed by ./install.sh --test) through every door:
its agent in ``dojoflow run``, ``dojoflow sweep run`` and the gym environment, its sandbox backend, and its
metric in a task on DOJOFLOW_TASK_PATH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PLUGIN = REPO / "examples" / "plugin"
DOJOFLOW = str(Path(sys.executable).parent / "dojoflow")


def test_the_plugin_is_installed_with_its_three_entry_points():
    found = {group: {ep.name for ep in entry_points(group=group)}
             for group in ("dojoflow.agents", "dojoflow.sandboxes", "dojoflow.metrics")}
    assert found == {"dojoflow.agents": {"knn"}, "dojoflow.sandboxes": {"counting-local"},
                     "dojoflow.metrics": {"median_absolute_error"}}, \
        "install the example plugin: pip install -e examples/plugin (./install.sh --test does)"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([DOJOFLOW, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})


@pytest.mark.slow  # over ~8 s on 2 cores: CI runs it with -m slow
def test_plugin_agent_backend_and_metric_through_dojoflow_run():
    proc = _run("run", "--task", "diabetes-median-error", "--agent", "knn", "--sandbox", "counting-local",
                "--no-prefect", "--json", DOJOFLOW_TASK_PATH=str(PLUGIN / "tasks"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["agent"] == "knn" and result["sandbox"] == "counting-local" and result["valid"]
    assert result["metric"] == "median_absolute_error" and result["higher_is_better"] is False
    assert 0 < result["score"] < 200  # progression spans 25-346: a fitted model, not a constant guess


def test_unknown_plugin_agent_option_is_one_clean_line():
    proc = _run("run", "--task", "iris-species", "--agent", "knn", "--agent-option", "neighbours=3", "--no-prefect")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "neighbours" in proc.stderr


@pytest.mark.slow  # tens of seconds on 2 cores: CI runs it with -m slow
def test_plugin_agent_and_backend_in_a_sweep(prefect_api, settings):
    from dojoflow.flows.prefect_sweep import sweep_states
    from dojoflow.flows.sweep_spec import load_sweep_spec

    spec = load_sweep_spec(PLUGIN / "sweep.yaml")
    states = sweep_states(spec.to_dict())
    assert [s["state"] for s in states] == ["completed"] * 2 and all(s["valid"] for s in states)


def test_plugin_agent_drives_the_gym_env_on_the_plugin_backend(settings):
    from dojoflow.api import make_agent, make_env

    env = make_env("iris-species", max_steps=4, sandbox="counting-local")
    agent = make_agent("knn")
    observation, info = env.reset(seed=0)
    assert info["sandbox"] == "counting-local"
    from dojoflow.api import Observation

    agent.reset(Observation(observation["text"], "info", info["observation"]), 0)
    done, data = False, info["observation"]
    while not done:
        action = agent.act(Observation(observation["text"], "info", data))
        observation, reward, terminated, truncated, step_info = env.step(action.to_dict())
        data = {**info["observation"], **step_info["observation"]}
        done = terminated or truncated
    assert terminated and step_info["final"]["valid"]
    assert env.unwrapped.inner.sandbox.steps_run == 1  # the one code step ran on the plugin's backend
    env.close()


def test_example_sweep_spec_is_valid():
    from dojoflow.flows.sweep_spec import load_sweep_spec

    spec = load_sweep_spec(REPO / "examples" / "sweep.yaml")
    assert spec.name == "example-lite" and spec.seeds == (0, 1) and "breast-cancer" in spec.tasks
    assert set(yaml.safe_load((REPO / "examples" / "sweep.yaml").read_text())) <= set(spec.to_dict())


@pytest.mark.parametrize("typo", [{"seed": 3}, {"budgets": {"max_steps": 2}}])
def test_sweep_spec_rejects_unknown_keys(typo):
    from dojoflow.errors import SweepSpecError
    from dojoflow.flows.sweep_spec import parse_sweep_spec

    with pytest.raises(SweepSpecError, match="unknown keys"):
        parse_sweep_spec({"name": "x", "agents": ["baseline"], "tasks": ["digits"], **typo})
