"""The episode as a Prefect flow: each DAG step is a Prefect task wrapping the plain step function.

Tasks use ``NO_CACHE`` (their inputs are live objects such as the environment; caching them is neither
possible nor wanted), do not persist results and carry no tags (a tagged task run costs an API call for
tag-based concurrency). The flow takes one :class:`EpisodeConfig` (a deployment
run passes it as JSON and Prefect validates it back into the dataclass). Flow runs are named
by the episode id (the same name as the MLflow run, the folder and the results row) and tagged
``task:<id>``, ``agent:<name>`` and ``seed:<n>`` for filtering in the UI.

What the flow run shows: one log line per step (action, exit status, feedback score, reward, time) through
Prefect's run logger, and a Markdown artifact ``episode-<id>`` with the episode's summary and a link to its
MLflow run. A failed episode's flow run is Failed with the error; a deterministic error (task or agent, see
:mod:`dojoflow.flows.failures`) turns the run's remaining retries off, so only infrastructure failures are
retried.
"""

from __future__ import annotations

import contextlib
from typing import Any

from prefect import flow, tags, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import concurrency
from prefect.context import TagsContext
from prefect.runtime import flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from dojoflow.flows import episode as plain
from dojoflow.flows.config import EpisodeConfig


def _as_task(fn, name: str):
    return task(fn, name=name, cache_policy=NO_CACHE, persist_result=False)


PREFECT_STEPS = plain.EpisodeSteps(
    data_prep=_as_task(plain.data_prep, "data-prep"),
    agent_step=_as_task(plain.agent_step, "agent-step"),
    execution=_as_task(plain.execution, "execution"),
    feedback_grading=_as_task(plain.feedback_grading, "feedback-grading"),
    final_grading=_as_task(plain.final_grading, "final-grading"),
    integrity_check=_as_task(plain.integrity_check, "integrity-check"),
    record=_as_task(plain.record, "record"),
    agent_run=_as_task(plain.agent_run, "execution"),  # a command agent's whole run is its execution step
)


def episode_tags(config: EpisodeConfig) -> list[str]:
    """The Prefect tags of an episode's flow run."""
    run_tags = [f"task:{config.task_id}", f"agent:{config.agent}", f"seed:{config.seed}"]
    return run_tags + ([f"sweep:{config.sweep_id}"] if config.sweep_id else [])


def _run_name() -> str:
    config = flow_run.parameters.get("config")
    if isinstance(config, dict):
        config = EpisodeConfig.from_dict(config)
    return config.run_name if isinstance(config, EpisodeConfig) else "episode"


def step_logger():
    """A logger whose INFO lines reach the flow run's logs in the Prefect UI (and not the terminal).

    dojoflow keeps Prefect's own loggers at WARNING (``PREFECT_LOGGING_LEVEL``) so commands stay quiet; this
    child of ``prefect.flow_runs`` sends to the API only, with the flow run's context."""
    import logging

    from prefect import get_run_logger
    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger("prefect.flow_runs.dojoflow")
    if not any(isinstance(h, APILogHandler) for h in logger.handlers):
        logger.addHandler(APILogHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False
    run_logger = get_run_logger()
    extra = dict(getattr(run_logger, "extra", None) or {})
    return logging.LoggerAdapter(logger, extra)


def stop_retries(flow_run_id: str) -> None:
    """Give the flow run no retries left (Prefect's server retries every Failed flow run that has some)."""
    import asyncio
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import FlowRunPolicy

    async def update() -> None:
        async with get_client() as client:
            run = await client.read_flow_run(UUID(flow_run_id))
            policy = FlowRunPolicy(**{**run.empirical_policy.model_dump(), "retries": 0, "max_retries": 0})
            await client.update_flow_run(UUID(flow_run_id), empirical_policy=policy)

    asyncio.run(update())


def publish_summary(result, links: dict[str, str] | None = None) -> None:
    """The episode's summary as the flow run's Markdown artifact."""
    from prefect.artifacts import create_markdown_artifact

    from dojoflow.reporting.episode import summary_markdown

    data = result.to_dict()
    key = "episode-" + "".join(c if c.isalnum() or c == "-" else "-" for c in data["episode_id"].lower())
    create_markdown_artifact(markdown=summary_markdown(data, links), key=key[:100],
                             description=f"dojoflow episode {data['episode_id']} ({data['status']})")


@flow(name="episode", flow_run_name=_run_name, persist_result=False, log_prints=True)
def episode_flow(config: EpisodeConfig, concurrency_limit: str | None = None) -> dict[str, Any]:
    """One episode through the DAG; returns the episode result as a dict.

    ``concurrency_limit`` names a Prefect global concurrency limit the episode occupies while it runs
    (sweeps create one).
    """
    if isinstance(config, dict):  # a caller that bypassed parameter validation
        config = EpisodeConfig.from_dict(config)
    # not strict: the sweep removes its limit when it ends, and a Retry from the Prefect UI afterwards runs the
    # one episode without it
    slot = concurrency(concurrency_limit, occupy=1, strict=False) if concurrency_limit else contextlib.nullcontext()
    # The flow run carries the episode's tags; its task runs do not: Prefect checks a tag-based concurrency
    from dojoflow.flows.failures import classify_error, describe, is_retryable

    config = config.with_identity() if config.episode_id else \
        EpisodeConfig.from_dict({**config.to_dict(), "episode_id": flow_run.get_name() or None}).with_identity()
    run_id = str(flow_run.get_id())
    log = step_logger()
    failures: list = []
    try:
        # The flow run carries the episode's tags; its task runs do not: Prefect checks a tag-based concurrency
        # limit for every tag of every task run (an API call each), which the DAG's tasks never use.
        with slot, TagsContext(current_tags=set()):
            result = plain.drive_episode(config, PREFECT_STEPS, flow_run_id=run_id,
                                         attempt=flow_run.get_run_count() or 1, log=log.info, failures=failures)
    except Exception as exc:
        error_class = classify_error(exc)
        retry = is_retryable(error_class)
        log.error(f"episode {config.episode_id} failed ({error_class} error, "
                  f"{'retried while retries are left' if retry else 'not retried'}): {describe(exc)}")
        if failures:
            _quietly(publish_summary, failures[-1], _links(failures[-1]))
        if not retry:
            _quietly(stop_retries, run_id)
        raise
    log.info(f"episode {result.episode_id} ended: {result.end_reason}; valid {result.valid}, "
             f"{result.metric} {result.score}, medal {result.medal or 'none'}, HumanRank {result.human_rank:.3f}")
    _quietly(publish_summary, result, _links(result))
    return result.to_dict()


def _links(result) -> dict[str, str]:
    return {"Prefect flow run": result.prefect_url, "MLflow run": result.mlflow_url}


def _quietly(fn, *args) -> None:
    """UI extras (an artifact, a retry policy) never change how the episode ended."""
    try:
        fn(*args)
    except Exception:  # noqa: BLE001
        pass


def in_process() -> contextlib.AbstractContextManager:
    """Settings for an episode flow run in this process (the CLI, a local sweep): no flow-run heartbeats.

    Heartbeats exist to let a server notice a flow run whose worker died; in-process runs are watched by
    dojoflow itself (sweep markers), and each heartbeat thread costs a flow run up to a second when it
    ends (Prefect joins it while it sleeps). Deployment runs on workers keep Prefect's default.
    """
    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def run_episode(config: EpisodeConfig) -> dict[str, Any]:
    """Run the flow on ``config`` in this process, tagged for filtering in the Prefect UI."""
    config = config.with_identity()
    with in_process(), tags(*episode_tags(config)):
        return episode_flow(config)
