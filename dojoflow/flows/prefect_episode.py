"""The episode as a Prefect flow: each DAG step is a Prefect task wrapping the plain step function.

Tasks use ``NO_CACHE`` (their inputs are live objects such as the environment; caching them is neither
possible nor wanted), do not persist results and carry no tags (a tagged task run costs an API call for
tag-based concurrency). The flow takes one :class:`EpisodeConfig` (a deployment
run passes it as JSON and Prefect validates it back into the dataclass). Flow runs are named
``<agent>-<task>-seed<N>`` and tagged ``task:<id>``, ``agent:<name>`` and ``seed:<n>`` for filtering in
the UI.
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


@flow(name="episode", flow_run_name=_run_name, persist_result=False, log_prints=True)
def episode_flow(config: EpisodeConfig, concurrency_limit: str | None = None) -> dict[str, Any]:
    """One episode through the DAG; returns the episode result as a dict.

    ``concurrency_limit`` names a Prefect global concurrency limit the episode occupies while it runs
    (sweeps create one).
    """
    if isinstance(config, dict):  # a caller that bypassed parameter validation
        config = EpisodeConfig.from_dict(config)
    slot = concurrency(concurrency_limit, occupy=1, strict=True) if concurrency_limit else contextlib.nullcontext()
    # The flow run carries the episode's tags; its task runs do not: Prefect checks a tag-based concurrency
    # limit for every tag of every task run (an API call each), which the DAG's tasks never use.
    with slot, TagsContext(current_tags=set()):
        result = plain.drive_episode(config, PREFECT_STEPS, flow_run_id=str(flow_run.get_id()))
    return result.to_dict()


def in_process() -> contextlib.AbstractContextManager:
    """Settings for an episode flow run in this process (the CLI, a local sweep): no flow-run heartbeats.

    Heartbeats exist to let a server notice a flow run whose worker died; in-process runs are watched by
    dojoflow itself (sweep markers), and each heartbeat thread costs a flow run up to a second when it
    ends (Prefect joins it while it sleeps). Deployment runs on workers keep Prefect's default.
    """
    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def run_episode(config: EpisodeConfig) -> dict[str, Any]:
    """Run the flow on ``config`` in this process, tagged for filtering in the Prefect UI."""
    with in_process(), tags(*episode_tags(config)):
        return episode_flow(config)
