"""Sweeps: agents x tasks x seeds as Prefect flow runs, limited, retried and resumed.

Each episode is its own flow run of the ``episode`` flow (named ``<agent>-<task>-seed<N>``, tagged with
the sweep, task, agent and seed), run in-process on a thread pool or, when the spec names a deployment,
on workers through ``run_deployment``. In-process episodes run on a pool of ``concurrency`` threads; episodes
on workers occupy a Prefect global concurrency limit ``dojoflow-sweep-<id>``, created by the sweep, which
bounds the episodes that run at once wherever they run.

Idempotency: an episode's key is (sweep, agent, task, seed). Its results row, its MLflow run and its
deployment flow run (``idempotency_key``) are keyed by it, and an episode whose row exists is not run
again, so resuming or retrying a sweep never runs or records a completed episode twice.

Retries are for infrastructure failures only: an agent's bad code is a valid (failed-step) result inside
a completed episode; an exception out of the episode flow (storage, a crashed worker) is retried by
Prefect ``retries`` times, then recorded as a failure that ``dojoflow sweep retry`` re-runs.

State lives in ``$DOJOFLOW_HOME/sweeps/<id>/``: ``spec.yaml``, ``running/<key>.json`` (a marker with the
runner's pid: a marker whose process is gone means the episode crashed), ``failures/<key>.json`` and
``events.jsonl`` (one line per episode that ended, which ``dojoflow sweep run`` follows for its progress
bar). The Prefect flow around :func:`run_sweep` is in :mod:`dojoflow.flows.prefect_sweep`.
"""

from __future__ import annotations

import contextvars
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from dojoflow.atomic import write_atomic
from dojoflow.config import Settings, get_settings
from dojoflow.errors import ServiceError, UnknownNameError
from dojoflow.flows.config import EpisodeConfig
from dojoflow.flows.sweep_spec import AgentEntry, SweepSpec, parse_sweep_spec

EVENTS_FILE = "events.jsonl"
RETRY_DELAY_S = 2
DEPLOYMENT_POLL_S = 2


@dataclass(frozen=True)
class EpisodeState:
    """Where one episode of a sweep stands."""

    key: str
    agent: str
    task: str
    seed: int
    state: str  # completed, failed, crashed, running, pending
    score: float | None = None
    valid: bool | None = None
    error: str | None = None
    error_class: str | None = None  # task, agent or infrastructure (see flows/failures.py)


def sweep_dir(settings: Settings, sweep_id: str) -> Path:
    """The sweep's state folder."""
    return settings.sweeps_dir / sweep_id


def episode_config(spec: SweepSpec, agent: AgentEntry, task: str, seed: int,
                   parent_run_id: str | None = None) -> EpisodeConfig:
    """The one config of a sweep episode (everything else about the episode derives from it)."""
    return EpisodeConfig(task_id=task, agent=agent.name, seed=seed, max_steps=spec.max_steps, sandbox=spec.sandbox,
                         sweep_id=spec.name, parent_run_id=parent_run_id, agent_options=dict(agent.options),
                         feedback=spec.feedback, command=dict(agent.command) if agent.command is not None else None,
                         wall_time_s=spec.wall_time_s, cost_budget_usd=spec.cost_budget_usd,
                         integrity=spec.integrity, description=spec.description, judge=dict(spec.judge))


def append_event(settings: Settings, sweep_id: str, key: str, state: str, ended: bool = True) -> None:
    """Record that an episode ended (or was found completed) - or, with ``ended=False``, what it is waiting
    for; one JSON line, appended."""
    line = json.dumps({"key": key, "state": state, "ended": ended, "time": time.time()}) + "\n"
    with (sweep_dir(settings, sweep_id) / EVENTS_FILE).open("a") as fh:
        fh.write(line)


def follow_events(path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Events appended to ``path`` since byte ``offset``, and the new offset (complete lines only)."""
    if not path.is_file():
        return [], offset
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read()
    complete = data[: data.rfind(b"\n") + 1]
    events = [json.loads(line) for line in complete.splitlines() if line.strip()]
    return events, offset + len(complete)


def apply_spec_environment(spec: SweepSpec) -> None:
    """Point tracking and storage where the spec says (inherited by in-process episodes)."""
    for variable, value in (("DOJOFLOW_TRACKING_URI", spec.tracking_uri), ("DOJOFLOW_ARTIFACT_STORE", spec.artifacts),
                            ("DOJOFLOW_S3_ENDPOINT_URL", spec.s3_endpoint_url)):
        if value:
            os.environ[variable] = value


def save_spec(settings: Settings, spec: SweepSpec) -> Path:
    """Save the spec and create the sweep's state folders (a resume finds them)."""
    folder = sweep_dir(settings, spec.name)
    (folder / "failures").mkdir(parents=True, exist_ok=True)
    (folder / "running").mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "spec.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False))
    return folder


def load_saved_spec(settings: Settings, sweep_id: str) -> SweepSpec:
    """The spec a sweep was last run with."""
    path = sweep_dir(settings, sweep_id) / "spec.yaml"
    if not path.is_file():
        known = sorted(p.name for p in settings.sweeps_dir.iterdir()) if settings.sweeps_dir.is_dir() else []
        raise UnknownNameError(f"unknown sweep '{sweep_id}'; known sweeps: {', '.join(known) or '(none)'}")
    return parse_sweep_spec(yaml.safe_load(path.read_text()), str(path))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sweep_status(settings: Settings, spec: SweepSpec) -> list[EpisodeState]:
    """The state of every episode of the sweep."""
    from dojoflow.storage.results import load_results

    sync_results(settings)
    results = load_results(settings.results_dir)
    done = {row["episode_key"]: row for row in results[results["sweep_id"] == spec.name].to_dict("records")} \
        if "sweep_id" in results else {}
    folder = sweep_dir(settings, spec.name)
    states = []
    for agent, task, seed in spec.episodes():
        key = episode_config(spec, agent, task, seed).require_key()
        failure, running = folder / "failures" / f"{key}.json", folder / "running" / f"{key}.json"
        row = done.get(key)
        if row is not None and row.get("status") != "failed":
            states.append(EpisodeState(key, agent.name, task, seed, "completed", row["score"], bool(row["valid"])))
        elif running.is_file():
            pid = json.loads(running.read_text()).get("pid", -1)
            state = "running" if _pid_alive(pid) else "crashed"
            states.append(EpisodeState(key, agent.name, task, seed, state,
                                       error=None if state == "running" else "the process running it died"))
        elif row is not None:  # the failed episode's own row
            states.append(EpisodeState(key, agent.name, task, seed, "failed", error=row.get("end_reason"),
                                       error_class=row.get("error_class") or None))
        elif failure.is_file():
            recorded = json.loads(failure.read_text())
            states.append(EpisodeState(key, agent.name, task, seed, "failed", error=recorded["error"],
                                       error_class=recorded.get("error_class")))
        else:
            states.append(EpisodeState(key, agent.name, task, seed, "pending"))
    return states


def sync_results(settings: Settings) -> int:
    """Fetch results rows that workers uploaded to a remote artifact store; returns how many were new."""
    if not settings.artifact_store.startswith("s3://"):
        return 0  # a local store shares the results folder already
    from dojoflow.storage.artifacts import artifact_store

    store = artifact_store(settings)
    settings.results_dir.mkdir(parents=True, exist_ok=True)
    new = 0
    for key in store.list("results"):
        target = settings.results_dir / Path(key).name
        if not target.exists():
            target.write_bytes(store.get_bytes(key))
            new += 1
    return new


def ensure_concurrency_limit(name: str, limit: int, release_slots: bool = False) -> None:
    """Create (or resize) the Prefect global concurrency limit the episodes occupy. ``release_slots``: also
    free every occupied slot - when no episode of the sweep is running, an occupied slot belongs to a sweep
    process that died (``kill -9``) and would make the resumed sweep wait for ever."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    async def upsert() -> None:
        async with get_client() as client:
            try:
                await client.read_global_concurrency_limit_by_name(name)
                update = (GlobalConcurrencyLimitUpdate(limit=limit, active_slots=0) if release_slots
                          else GlobalConcurrencyLimitUpdate(limit=limit))
                await client.update_global_concurrency_limit(name, update)
            except ObjectNotFound:
                await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))

    asyncio.run(upsert())


def _run_one(spec: SweepSpec, agent: AgentEntry, task: str, seed: int, settings: Settings, limit_name: str,
             parent_run_id: str | None) -> EpisodeState:
    """Run one episode (in-process flow run or deployment run); record a failure instead of raising."""
    from dojoflow.flows.prefect_episode import episode_flow, episode_tags, in_process

    config = episode_config(spec, agent, task, seed, parent_run_id)
    key = config.require_key()
    folder = sweep_dir(settings, spec.name)
    marker = folder / "running" / f"{key}.json"
    marker.write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))
    try:
        if spec.deployment:
            append_event(settings, spec.name, key, f"submitted to {spec.deployment}: waiting for a worker and a "
                         f"slot of {limit_name}", ended=False)
            _run_on_deployment(spec, key, {"config": config.to_dict(), "concurrency_limit": limit_name},
                               config.run_name, episode_tags(config))
            result: dict[str, Any] = {}
        else:
            from prefect import tags

            # in-process episodes are bounded by the sweep's thread pool (spec.concurrency workers): occupying
            # the global limit as well would cost API calls and gain nothing
            with in_process(), tags(*episode_tags(config)):
                result = episode_flow.with_options(retries=spec.retries, retry_delay_seconds=RETRY_DELAY_S)(
                    config)
        (folder / "failures" / f"{key}.json").unlink(missing_ok=True)
        return EpisodeState(key, agent.name, task, seed, "completed", result.get("score"), result.get("valid"))
    except Exception as exc:  # noqa: BLE001 - a failure (after retries, if worth any): record it, go on
        from dojoflow.flows.failures import classify_error, describe

        error, error_class = describe(exc), classify_error(exc)
        (folder / "failures" / f"{key}.json").write_text(json.dumps({"error": error, "error_class": error_class,
                                                                     "time": time.time()}))
        return EpisodeState(key, agent.name, task, seed, "failed", error=error, error_class=error_class)
    finally:
        marker.unlink(missing_ok=True)


def _run_on_deployment(spec: SweepSpec, key: str, params: dict[str, Any], name: str, run_tags: list[str]) -> None:
    """Run the episode on a worker; a run that fails, crashes or outlives ``episode_timeout_s`` (its worker
    died) is marked crashed and submitted again, up to ``retries`` times. Recording is idempotent, so a
    resubmitted episode is still recorded once."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.states import Crashed

    async def mark_crashed(flow_run_id) -> None:
        async with get_client() as client:
            await client.set_flow_run_state(flow_run_id, Crashed(message="no result within the episode timeout "
                                                                          "(its worker probably died)"), force=True)

    last = "not run"
    assert spec.deployment is not None
    for attempt in range(spec.retries + 1):
        flow_run = cast(FlowRun, run_deployment(spec.deployment, parameters=params, idempotency_key=f"{key}#{attempt}",
                                  flow_run_name=name, timeout=spec.episode_timeout_s, poll_interval=DEPLOYMENT_POLL_S,
                                  tags=run_tags))
        state = flow_run.state
        if state is not None and state.is_completed():
            return
        if state is None or not state.is_final():
            asyncio.run(mark_crashed(flow_run.id))
            last = f"flow run {flow_run.id} did not finish within {spec.episode_timeout_s:g} s"
        else:
            last = f"flow run {flow_run.id} ended {state.name}: {state.message or ''}".strip()
            if _deterministic_failure(key):
                break  # the same error again on resubmission: the episode's row says it was the task or agent
    raise ServiceError(last)


def _deterministic_failure(key: str) -> bool:
    """Whether the episode's results row records a task or agent error (not worth resubmitting)."""
    from dojoflow.flows.failures import is_retryable
    from dojoflow.storage.results import load_results

    settings = get_settings()
    sync_results(settings)
    row_file = settings.results_dir / f"{key}.parquet"
    if not row_file.is_file():
        return False
    row = load_results(row_file).iloc[0]
    return row["status"] == "failed" and not is_retryable(str(row["error_class"]))


def run_sweep(spec: SweepSpec, settings: Settings | None = None,
              only_keys: set[str] | None = None) -> list[EpisodeState]:
    """Run the sweep's episodes that are not completed (or only ``only_keys``), then report.

    Must be called inside the ``sweep`` flow (:func:`~dojoflow.flows.prefect_sweep.sweep_flow`) or with
    Prefect's API available. Each episode that ends (or was completed earlier) is appended to the sweep's
    ``events.jsonl``.
    """
    from dojoflow.storage.recording import flush_pending

    apply_spec_environment(spec)
    settings = get_settings() if settings is None or spec.tracking_uri or spec.artifacts else settings
    save_spec(settings, spec)
    flush_pending(settings)
    limit_name = f"dojoflow-sweep-{spec.name}"
    before = sweep_status(settings, spec)  # one state per episode, in spec.episodes() order
    if spec.deployment:
        ensure_concurrency_limit(limit_name, spec.concurrency,
                                 release_slots=not any(s.state == "running" for s in before))
    todo = [episode for episode, state in zip(spec.episodes(), before)
            if state.state != "completed" and (only_keys is None or state.key in only_keys)]
    for state in before:
        if state.state == "completed":
            append_event(settings, spec.name, state.key, "completed (earlier)")
    parent = _start_parent_run(settings, spec)
    with ThreadPoolExecutor(max_workers=spec.concurrency, thread_name_prefix="episode") as pool:
        futures = [pool.submit(contextvars.copy_context().run, _run_one, spec, a, t, s, settings, limit_name, parent)
                   for a, t, s in todo]
        for future in as_completed(futures):
            state = future.result()
            append_event(settings, spec.name, state.key, state.state)
    flush_pending(settings)
    states = sweep_status(settings, spec)
    _finish_report(settings, spec, parent, states)
    if spec.deployment and not any(s.state == "running" for s in states):
        remove_concurrency_limit(limit_name)
    return states


def remove_concurrency_limit(name: str) -> None:
    """Delete the sweep's global concurrency limit once the sweep has ended (a resume creates it again)."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async def delete() -> None:
        async with get_client() as client:
            try:
                await client.delete_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                pass

    asyncio.run(delete())


def _start_parent_run(settings: Settings, spec: SweepSpec) -> str:
    """The sweep's MLflow parent run (episodes are tagged as its children)."""
    from dojoflow.storage.tracking import start_parent_run

    return start_parent_run(settings, spec.name, spec.to_dict())


def _finish_report(settings: Settings, spec: SweepSpec, parent_run_id: str, states: list[EpisodeState]) -> None:
    """Aggregate the sweep's completed rows and list what did not complete: a Prefect Markdown artifact and
    the MLflow parent run's description, table and plot (the run ends FAILED when an episode failed)."""
    from dojoflow.reporting.pooling import report_sections
    from dojoflow.reporting.render import plot, sections_markdown
    from dojoflow.storage.results import completed, load_results
    from dojoflow.storage.tracking import finish_parent_run

    results = load_results(settings.results_dir)
    rows = completed(results[results["sweep_id"] == spec.name])
    counts: dict[str, int] = {}
    for state in states:
        counts[state.state] = counts.get(state.state, 0) + 1
    header = (f"# Sweep {spec.name}\n\n{len(states)} episodes: "
              + ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) + "\n")
    unfinished = [s for s in states if s.state != "completed"]
    if unfinished:
        header += ("\n## Episodes that did not complete\n\n| episode | state | error class | error |\n"
                   "|---|---|---|---|\n")
        header += "".join(f"| {s.key} | {s.state} | {s.error_class or ''} | "
                          f"{(s.error or '').replace('|', '/')[:300]} |\n" for s in unfinished)
        header += f"\nRe-run them: `dojoflow sweep retry {spec.name}` (or Retry on the flow run in the Prefect UI).\n"
    folder = sweep_dir(settings, spec.name)
    artifacts: dict[str, Path] = {"report.md": folder / "report.md"}
    metrics: dict[str, float] = {"episodes_failed": float(len(unfinished)), "episodes_completed": float(
        counts.get("completed", 0))}
    if rows.empty:
        markdown = header + "\nNo episode completed: nothing to aggregate.\n"
    else:
        sections = report_sections(rows, pool=True)  # a resumed sweep may span commits: pooled, and it says so
        report = sections[0]
        markdown = header + "\n## Completed episodes\n\n" + sections_markdown(sections)
        plot(report, rows, folder / "report.png")
        artifacts["report.png"] = folder / "report.png"
        for r in report.rates[report.rates["split"] == "all"].to_dict("records"):
            metrics.update({f"{r['agent']}.human_rank_mean": r["human_rank_mean"],
                            f"{r['agent']}.valid_mean": r["valid_mean"],
                            f"{r['agent']}.any_medal_mean": r["any_medal_mean"]})
    (folder / "report.md").write_text(markdown + "\n")
    try:
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(markdown=markdown, key=f"sweep-{spec.name}".lower(),
                                 description=f"dojoflow sweep {spec.name}")
    except Exception:  # noqa: BLE001 - outside a flow run there is nothing to attach the artifact to
        pass
    finish_parent_run(settings, parent_run_id, metrics, artifacts, description=markdown, failed=bool(unfinished))
