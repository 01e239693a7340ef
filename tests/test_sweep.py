"""Sweeps through Prefect's real API: resume without re-running, retry only what failed, spec errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dojoflow.errors import SweepSpecError
from dojoflow.flows.sweep_spec import load_sweep_spec, parse_sweep_spec

pytestmark = pytest.mark.integration
BUILTIN = Path(__file__).resolve().parents[1] / "dojoflow" / "tasks_catalog" / "builtin"


@pytest.mark.parametrize("data, field, message", [
    ({"agents": ["baseline"], "tasks": ["digits"]}, "name", "required"),
    ({"name": "x y", "agents": ["baseline"], "tasks": ["digits"]}, "name", "letters"),
    ({"name": "s", "agents": ["gpt-magic"], "tasks": ["digits"]}, "agents[0].name", "unknown agent"),
    ({"name": "s", "agents": ["baseline"], "tasks": ["nope"]}, "tasks[0]", "unknown task 'nope'"),
    ({"name": "s", "agents": ["baseline"], "tasks": ["split:none-such"]}, "tasks[0]", "no task is in split"),
    ({"name": "s", "agents": ["baseline"], "tasks": ["digits"], "seeds": "three"}, "seeds", "must be"),
])
def test_spec_errors_name_the_field(data, field, message):
    with pytest.raises(SweepSpecError) as info:
        parse_sweep_spec(data, "sweep.yaml")
    assert info.value.field == field and message in str(info.value) and "sweep.yaml" in str(info.value)


def test_spec_expands_agents_tasks_seeds(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nagents: [baseline]\ntasks: [digits, breast-cancer]\nseeds: 3\n")
    spec = load_sweep_spec(path)
    assert len(spec.episodes()) == 6 and spec.seeds == (0, 1, 2)


@pytest.fixture
def flaky_task(tmp_path, monkeypatch):
    """A task whose data preparation fails while a marker file exists (an 'infrastructure' failure)."""
    root = tmp_path / "tasks"
    shutil.copytree(BUILTIN / "penguins-body-mass", root / "flaky-penguins")
    spec = (root / "flaky-penguins" / "task.yaml").read_text().replace("id: penguins-body-mass", "id: flaky-penguins")
    (root / "flaky-penguins" / "task.yaml").write_text(spec)
    marker = tmp_path / "storage-down"
    marker.touch()
    prepare = root / "flaky-penguins" / "prepare.py"
    prepare.write_text(prepare.read_text().replace(
        "def prepare(spec, public_dir: Path, private_dir: Path) -> None:\n",
        f"def prepare(spec, public_dir: Path, private_dir: Path) -> None:\n"
        f"    if Path({str(marker)!r}).exists():\n        raise OSError('raw data store unreachable')\n"))
    monkeypatch.setenv("DOJOFLOW_TASK_PATH", str(root))
    return marker


@pytest.mark.slow  # tens of seconds on 2 cores: CI runs it with -m slow
def test_sweep_resumes_and_retries_only_the_failed_episode(prefect_api, settings, flaky_task):
    from mlflow.tracking import MlflowClient

    from dojoflow.flows.prefect_sweep import sweep_states
    from dojoflow.flows.sweep import sweep_status
    from dojoflow.storage.results import load_results

    spec = parse_sweep_spec({"name": "retry-test", "agents": [{"name": "baseline", "options": {"models": 1}}],
                             "tasks": ["penguins-body-mass", "flaky-penguins"], "seeds": [0, 1],
                             "budget": {"max_steps": 2}, "concurrency": {"episodes": 2}, "retries": 1})
    states = {s["key"]: s for s in sweep_states(spec.to_dict())}
    failed = {k for k, v in states.items() if v["state"] == "failed"}
    assert len(failed) == 2 and all("flaky-penguins" in k for k in failed)
    assert all(states[k]["error_class"] == "infrastructure" for k in failed)  # an I/O error: worth a retry
    assert sum(v["state"] == "completed" for v in states.values()) == 2

    def recorded() -> tuple[list[str], dict[str, int]]:
        rows = load_results(settings.results_dir)
        rows = rows[rows["sweep_id"] == "retry-test"]
        keys = sorted(rows[rows["status"] == "completed"]["episode_key"])
        client = MlflowClient(settings.tracking_uri)
        experiment = client.get_experiment_by_name("dojoflow").experiment_id
        runs = client.search_runs([experiment], "tags.`dojoflow.sweep_id` = 'retry-test' and "
                                                "tags.`dojoflow.kind` = 'episode'")
        statuses: dict[str, int] = {}
        for run in runs:
            statuses[run.info.status] = statuses.get(run.info.status, 0) + 1
        return keys, statuses

    # the failed episodes have their rows (status failed) and their runs (FAILED)
    rows = load_results(settings.results_dir)
    failed_rows = rows[(rows["sweep_id"] == "retry-test") & (rows["status"] == "failed")]
    assert sorted(failed_rows["episode_key"]) == sorted(failed)
    assert all("raw data store unreachable" in r for r in failed_rows["end_reason"])
    # each attempt (the first and Prefect's one retry) is a FAILED run, tagged with its attempt number
    assert recorded() == (sorted(set(states) - failed), {"FINISHED": 2, "FAILED": 4})

    # resuming runs nothing new; retrying after the outage ends runs only the failed episodes
    sweep_states(spec.to_dict())
    flaky_task.unlink()
    before = {p.name: p.stat().st_mtime_ns for p in settings.results_dir.glob("retry-test*.parquet")}
    sweep_states(spec.to_dict(), sorted(failed))
    after = {p.name: p.stat().st_mtime_ns for p in settings.results_dir.glob("retry-test*.parquet")}
    completed_before = {k: v for k, v in before.items() if "flaky" not in k}
    assert {k: v for k, v in after.items() if k in completed_before} == completed_before  # untouched
    keys, statuses = recorded()
    assert keys == sorted(states) and statuses["FINISHED"] == 4  # the failed attempts stay, as attempt 1
    assert all(s.state == "completed" for s in sweep_status(settings, spec))
    assert (settings.sweeps_dir / "retry-test" / "report.md").read_text().startswith("# Sweep retry-test")


def test_slots_left_by_a_dead_sweep_are_released_on_resume(prefect_api):
    """A sweep killed with -9 never releases its concurrency slots; resuming frees them instead of waiting."""
    import asyncio

    from prefect.client.orchestration import get_client

    from dojoflow.flows.sweep import ensure_concurrency_limit

    name = "dojoflow-sweep-dead-sweep-test"
    ensure_concurrency_limit(name, 1)

    async def occupy_and_read() -> int:
        async with get_client() as client:
            await client.increment_concurrency_slots_with_lease([name], slots=1, mode="concurrency",
                                                                lease_duration=3600)
            return (await client.read_global_concurrency_limit_by_name(name)).active_slots

    async def active() -> int:
        async with get_client() as client:
            return (await client.read_global_concurrency_limit_by_name(name)).active_slots

    assert asyncio.run(occupy_and_read()) == 1  # the dead process's slot
    ensure_concurrency_limit(name, 1, release_slots=True)
    assert asyncio.run(active()) == 0
