"""The episode through Prefect's real API (test harness server) and MLflow on SQLite."""

from __future__ import annotations

import asyncio

import pytest
from prefect_helpers import completed_task_names

pytestmark = pytest.mark.integration

DAG_TASKS = {"data-prep", "agent-step", "execution", "feedback-grading", "final-grading", "integrity-check", "record"}


def test_episode_flow_runs_the_dag_and_is_tracked(prefect_api, settings):
    from prefect.client.orchestration import get_client

    from dojoflow.flows.episode import EpisodeConfig
    from dojoflow.flows.prefect_episode import run_episode
    from dojoflow.storage.tracking import find_run

    result = run_episode(EpisodeConfig(task_id="penguins-body-mass", seed=1, max_steps=4))
    assert result["valid"] and result["flow_run_id"] and result["mlflow_run_id"]

    async def fetch():
        async with get_client() as client:
            flow_run = await client.read_flow_run(result["flow_run_id"])
            return flow_run

    flow_run = asyncio.run(fetch())
    assert flow_run.state.is_completed()
    assert flow_run.name == result["episode_id"]  # one name in Prefect, MLflow and the files
    assert flow_run.name.startswith("baseline--penguins-body-mass--s1--")
    assert {"task:penguins-body-mass", "agent:baseline", "seed:1"} <= set(flow_run.tags)
    names = completed_task_names(result["flow_run_id"], DAG_TASKS)
    assert DAG_TASKS <= names, names

    run = find_run(settings, result["mlflow_run_id"])
    assert run.info.run_name == result["episode_id"] and run.info.status == "FINISHED"
    assert result["prefect_url"].endswith(f"/runs/flow-run/{result['flow_run_id']}")
    assert result["mlflow_url"].endswith(f"/runs/{result['mlflow_run_id']}")
    import json
    from pathlib import Path

    header = json.loads((Path(result["episode_dir"]) / "trajectory.jsonl").read_text().splitlines()[0])
    assert header["mlflow_run_id"] == result["mlflow_run_id"]  # known when the trajectory is written
    assert run.data.params["task"] == "penguins-body-mass" and run.data.params["seed"] == "1"
    assert run.data.tags["dojoflow.flow_run_id"] == result["flow_run_id"]
    assert run.data.metrics["valid"] == 1.0
    assert abs(run.data.metrics["score"] - result["score"]) < 1e-9
    from mlflow.tracking import MlflowClient

    artifacts = {a.path for a in MlflowClient(settings.tracking_uri).list_artifacts(result["mlflow_run_id"])}
    assert {"steps", "trajectory.jsonl", "final_submission.csv"} <= artifacts
    client = MlflowClient(settings.tracking_uri)
    step_files = {a.path for a in client.list_artifacts(result["mlflow_run_id"], "steps/000")}
    assert {"steps/000/code.py", "steps/000/stdout.txt", "steps/000/submission.csv"} <= step_files


@pytest.mark.slow  # over ~8 s on 2 cores: CI runs it with -m slow
def test_prefect_and_plain_paths_give_the_same_trajectory(prefect_api, settings):
    from dojoflow.flows.episode import EpisodeConfig, drive_episode
    from dojoflow.flows.prefect_episode import episode_flow

    config = EpisodeConfig(task_id="breast-cancer", seed=2, max_steps=3, track=False)
    plain = drive_episode(config, settings=settings)
    flowed = episode_flow(config)
    assert flowed["score"] == plain.score

    def strip(steps):
        return [(s["action"], s["reward"], s["feedback_score"], s["valid_submission"]) for s in steps]

    from pathlib import Path

    from dojoflow.storage.trajectory import read_trajectory

    _, flowed_steps = read_trajectory(Path(flowed["episode_dir"]) / "trajectory.jsonl")
    assert strip(flowed_steps) == strip(plain.trajectory)
