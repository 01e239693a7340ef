"""Failures are first-class and readable in the UIs (issue 18), against Prefect's real API and MLflow on
SQLite: a deterministic preparation error is not retried and has its results row, its FAILED MLflow run and
its Prefect artifact; the sweep's flow run is Failed and its report counts the failure; sweep and episodes
are one MLflow experiment (episodes nested under the sweep's run) that MLflow 3 opens on its runs; an
episode's flow run has one log line per step and a summary artifact linking to its MLflow run; one name
everywhere."""

from __future__ import annotations

import asyncio

import pytest
from task_copies import penguins_copy_failing_prepare

from dojoflow.flows.failures import AGENT, INFRASTRUCTURE, TASK, classify_error
from dojoflow.flows.sweep_spec import parse_sweep_spec

pytestmark = pytest.mark.integration


def test_errors_are_classified():
    from dojoflow.errors import PreparationError, ServiceError, UnknownOptionError, WorkerDied

    assert classify_error(PreparationError("prepare.py: preparation failed; KeyError: 'x'")) == TASK
    assert classify_error(PreparationError("failed; last output: OSError: store unreachable")) == INFRASTRUCTURE
    assert classify_error(UnknownOptionError("baseline agent: unknown options x")) == AGENT
    assert classify_error(ServiceError("MLflow does not answer")) == INFRASTRUCTURE
    assert classify_error(WorkerDied("worker died")) == INFRASTRUCTURE
    assert classify_error(RuntimeError("a bug")) == INFRASTRUCTURE


@pytest.fixture
def broken_task(tmp_path, monkeypatch):
    """A task whose preparation has a bug (the same error every time)."""
    root = tmp_path / "tasks"
    penguins_copy_failing_prepare(root, "broken-penguins", "    raise KeyError('no_such_column')\n")
    monkeypatch.setenv("DOJOFLOW_TASK_PATH", str(root))


def _flow_runs(name_like: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    async def read():
        async with get_client() as client:
            return await client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=name_like)))

    return asyncio.run(read())


def _logs(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async def read():
        async with get_client() as client:
            return await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))

    return [log.message for log in asyncio.run(read())]


def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    found = asyncio.run(read())
    return found[0] if found else None


@pytest.mark.slow  # tens of seconds on 2 cores: CI runs it with -m slow
def test_a_failed_episode_is_visible_everywhere_and_not_retried_when_deterministic(prefect_api, settings,
                                                                                   broken_task):
    from mlflow.tracking import MlflowClient

    from dojoflow.flows.prefect_sweep import sweep_flow
    from dojoflow.storage.results import load_results

    spec = parse_sweep_spec({"name": "fail-test", "agents": [{"name": "baseline", "options": {"models": 1}}],
                             "tasks": ["penguins-body-mass", "broken-penguins"], "seeds": [0],
                             "budget": {"max_steps": 2}, "concurrency": {"episodes": 1}, "retries": 2})
    state = sweep_flow(spec.to_dict(), return_state=True)
    assert state.is_failed() and "1 of 2 episodes did not complete" in state.message  # the sweep's state
    by_key = {s["key"]: s for s in state.result(raise_on_failure=False)}
    bad_key, good_key = "fail-test--baseline--broken-penguins--s0", "fail-test--baseline--penguins-body-mass--s0"
    assert by_key[bad_key]["state"] == "failed" and by_key[bad_key]["error_class"] == "task"

    # one name: the Prefect flow run, the MLflow run, the folder and the row are all the episode id
    (bad_run,) = _flow_runs(bad_key)
    (good_run,) = _flow_runs(good_key)
    assert bad_run.name == bad_key and bad_run.state.is_failed()
    assert bad_run.run_count == 1  # a deterministic preparation error is not retried (retries: 2)
    assert (settings.episodes_dir / good_key / "trajectory.md").is_file()

    rows = load_results(settings.results_dir)
    bad_row = rows[rows["episode_id"] == bad_key].iloc[0]
    assert bad_row["status"] == "failed" and bad_row["error_class"] == "task"
    assert "no_such_column" in bad_row["end_reason"]

    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name("dojoflow")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "human_rank" in experiment.tags["mlflow.note.content"]
    assert client.get_experiment_by_name("dojoflow-sweeps") is None  # one experiment for sweeps and episodes
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`dojoflow.kind` = 'sweep' and "
                                                               "tags.`dojoflow.sweep_id` = 'fail-test'")
    assert parent.info.status == "FAILED" and "1 failed" in parent.data.tags["mlflow.note.content"]
    episodes = {r.data.tags["dojoflow.episode_id"]: r for r in client.search_runs(
        [experiment.experiment_id], "tags.`dojoflow.kind` = 'episode' and tags.`dojoflow.sweep_id` = 'fail-test'")}
    assert set(episodes) == {bad_key, good_key}
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in episodes.values())
    bad, good = episodes[bad_key], episodes[good_key]
    assert bad.info.status == "FAILED" and bad.data.tags["dojoflow.error_class"] == "task"
    assert bad.info.run_name == bad_key and "FAILED" in bad.data.tags["mlflow.note.content"]
    assert good.info.status == "FINISHED" and good.info.run_name == good_key
    assert good.data.params["metric"] == "rmse" and good.data.params["higher_is_better"] == "False"
    assert good.data.tags["dojoflow.medal"] in ("gold", "silver", "bronze", "none")
    assert {"gold", "silver", "bronze", "medal_rank", "human_rank", "llm_calls"} <= set(good.data.metrics)
    assert good.info.end_time - good.info.start_time > 500  # created when the episode started
    assert str(good_run.id) in good.data.tags["dojoflow.prefect_url"]
    names = {a.path for a in client.list_artifacts(good.info.run_id)}
    assert {"trajectory.md", "summary.md", "trajectory.jsonl"} <= names

    # the report counts the failure; Prefect has logs and a summary artifact per episode, linking to MLflow
    report = (settings.sweeps_dir / "fail-test" / "report.md").read_text()
    assert "2 episodes: 1 completed, 1 failed" in report and bad_key in report
    logs = _logs(good_run.id)
    assert any(line.startswith("step 0/2 | execute_code") and "feedback score" in line for line in logs), logs
    assert any("not retried" in line for line in _logs(bad_run.id))
    artifact = _artifact(f"episode-{good_key}")
    assert artifact is not None and good.info.run_id in artifact.data and "HumanRank" in artifact.data
    assert _artifact(f"episode-{bad_key}") is not None
