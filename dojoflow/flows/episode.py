"""The episode: plain step functions and the loop that drives them.

``drive_episode(config, steps)`` runs data-prep, then agent-step / execution / feedback-grading until the
episode terminates or is truncated, then final-grading, integrity-check and record. ``steps`` is either
:data:`PLAIN_STEPS` (direct calls) or the Prefect-task versions of the same functions
(:mod:`dojoflow.flows.prefect_episode`), so both paths produce the same trajectory. The task spec is
loaded once per episode and handed to every step that needs it; actions without code get no execution
step. The seconds spent in each DAG step are kept in ``EpisodeResult.timings``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import platform
import socket
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from dojoflow import __version__
from dojoflow.agents.base import Agent
from dojoflow.agents.external.integrity import run_command_integrity_checks
from dojoflow.agents.external.runner import CommandRun, check_ready, run_command_agent
from dojoflow.agents.external.spec import CommandAgentSpec
from dojoflow.agents.registry import make_agent
from dojoflow.config import Settings, get_settings
from dojoflow.dojo.actions import CODE_ACTIONS, Action
from dojoflow.dojo.env import MLEEnvironment
from dojoflow.dojo.integrity import run_integrity_checks
from dojoflow.dojo.observation import Observation
from dojoflow.dojo.summary import EpisodeResult, summarize
from dojoflow.dojo.workspace_files import WORKSPACE_AT_END
from dojoflow.flows.config import EpisodeConfig
from dojoflow.infra.gpu import GpuPool, detect_gpus
from dojoflow.infra.sandbox import ExecutionResult
from dojoflow.provenance import provenance_key
from dojoflow.tasks_catalog.registry import get_task
from dojoflow.tasks_catalog.spec import TaskSpec

__all__ = ["EpisodeConfig", "EpisodeResult", "EpisodeSteps", "PLAIN_STEPS", "drive_episode"]

NOT_ARTIFACTS = ("workspace", WORKSPACE_AT_END)  # episode folders kept on disk but not uploaded
COMMAND_ARTIFACTS = ("code", "logs", "submission", "llm", "validation")  # a command agent's folders, in MLflow


# -- the DAG's step functions -------------------------------------------------------------------------------
def data_prep(config: EpisodeConfig, spec: TaskSpec, settings: Settings, gpu: int | None = None
              ) -> tuple[MLEEnvironment, Observation, dict]:
    """Prepare (or reuse) the task's data and create the episode workspace."""
    env = MLEEnvironment(spec, seed=config.seed, max_steps=config.max_steps, reward_mode=config.reward_mode,
                         sandbox=config.sandbox, settings=settings, gpu=gpu, episode_id=config.episode_key,
                         wall_time_s=config.wall_time_s, cost_budget_usd=config.cost_budget_usd,
                         feedback=config.protocol)
    observation, info = env.reset()
    return env, observation, info


def agent_step(agent: Agent, observation: Observation) -> tuple[Any, dict[str, Any]]:
    """The agent chooses an action. An agent that crashes submits what it has; the harness goes on."""
    try:
        action = agent.act(observation)
        return action, dict(agent.last_step_info)
    except Exception as exc:  # noqa: BLE001 - agent code must never crash the harness
        return Action("submit"), {"agent_error": f"{type(exc).__name__}: {exc}",
                                  "traceback": traceback.format_exc(limit=5)}


def execution(env: MLEEnvironment, action: Action) -> ExecutionResult | None:
    """Run the action's code in the sandbox."""
    return env.run_code(action)


def feedback_grading(env: MLEEnvironment, action: Action | None, result: ExecutionResult | None,
                     invalid_action: str | None, agent_info: dict[str, Any]):
    """Grade on the public part, build the observation and reward, record the step."""
    return env.finish_step(action, result, invalid_action=invalid_action, agent_info=agent_info)


def agent_run(env: MLEEnvironment, config: EpisodeConfig) -> CommandRun:
    """A command agent's whole run in the sandbox (the episode's one execution step); see
    ``agents/external/runner.py``."""
    return run_command_agent(env, CommandAgentSpec.from_dict(config.command or {}), config.wall_time_s,
                             config.cost_budget_usd)


def final_grading(env: MLEEnvironment, step: int | None = None, reason: str | None = None) -> None:
    """Grade the chosen submission on the private part (already done if the agent submitted or a budget
    ran out). A command episode passes its step and reason (the file left in the submission path)."""
    if env.outcome is None:
        outcome = env.grade_final(step, reason or "the episode ended without a submission; the best valid one was "
                                                  "graded")
        if step is None and reason:  # the caller knows better why there is nothing to grade
            env.outcome = dataclasses.replace(outcome, reason=reason)


def integrity_check(env: MLEEnvironment, command_run: CommandRun | None = None) -> dict[str, Any]:
    """Was the result earned? (re-run in an emptied workspace, non-constant predictions; for a command agent
    the checks of ``agents/external/integrity.py``)."""
    if command_run is not None:
        return run_command_integrity_checks(env, command_run)
    if env.chosen_submission is None:
        return {"passed": False, "checks": [], "skipped": "no final submission"}
    return run_integrity_checks(env)


def record(env: MLEEnvironment, config: EpisodeConfig, result: EpisodeResult) -> EpisodeResult:
    """Trajectory to JSONL, the results row, episode files to the artifact store and one MLflow run (each
    delivered now or parked in the outbox for a later flush: see ``storage/recording.py``)."""
    from dojoflow.storage.recording import TrackedRun, flush_pending, record_artifacts, record_tracking
    from dojoflow.storage.results import write_result
    from dojoflow.storage.trajectory import write_trajectory

    settings = env.settings
    write_trajectory(env.episode_dir / "trajectory.jsonl", result.trajectory_header(), env.history)
    row_file = write_result(settings.results_dir, result.results_row())
    flush_pending(settings)  # deliver what an earlier outage left behind
    files = {f"episodes/{env.episode_id}/{p.relative_to(env.episode_dir).as_posix()}": p
             for p in _episode_files(env.episode_dir)}
    files[f"results/{row_file.name}"] = row_file
    result.artifacts_uri, result.storage_error = record_artifacts(settings, env.episode_id, files)
    if config.track:
        tags = {"dojoflow.episode_id": env.episode_id, "dojoflow.task": config.task_id,
                "dojoflow.agent": config.agent, "dojoflow.flow_run_id": result.flow_run_id or "",
                "dojoflow.sweep_id": config.sweep_id or "", "dojoflow.episode_key": config.episode_key or ""}
        if config.parent_run_id:
            tags["mlflow.parentRunId"] = config.parent_run_id
        artifacts = {"steps": env.episode_dir / "steps", "trajectory.jsonl": env.episode_dir / "trajectory.jsonl"}
        if env.chosen_submission is not None:
            artifacts["final_submission.csv"] = env.chosen_submission
        if config.command is not None:
            tags["dojoflow.ended_by"] = result.ended_by
        # a command agent's code, logs and validation records; the LLM gateway's records (any agent using it)
        artifacts.update({name: env.episode_dir / name for name in COMMAND_ARTIFACTS
                          if (env.episode_dir / name).exists()})
        run = TrackedRun(env.episode_id, f"{config.agent}/{config.task_id}/seed{config.seed}",
                         tracking_params(config, result), result.metrics(), step_metrics(env), tags, artifacts,
                         call_metrics=llm_call_metrics(env))
        result.mlflow_run_id, result.tracking_error = record_tracking(settings, run)
    return result


def _episode_files(episode_dir: Path) -> list[Path]:
    return [p for p in sorted(episode_dir.rglob("*"))
            if p.is_file() and p.relative_to(episode_dir).parts[0] not in NOT_ARTIFACTS]


def tracking_params(config: EpisodeConfig, result: EpisodeResult) -> dict[str, Any]:
    """The MLflow params of an episode: what it was, and what it ran on."""
    import sklearn

    return {"task": config.task_id, "agent": config.agent, "seed": config.seed, "max_steps": config.max_steps,
            "reward_mode": config.reward_mode, "sandbox": result.sandbox, "dojoflow_version": __version__,
            "sklearn_version": sklearn.__version__, "python": platform.python_version(),
            "host": socket.gethostname(), "user": getpass.getuser(),
            "leaderboard_provenance": result.leaderboard_provenance,
            "model": config.agent_options.get("model") or (config.command or {}).get("model") or "",
            "agent_options": json.dumps(config.agent_options, default=str, sort_keys=True),
            "feedback_protocol": result.feedback_protocol, "leaderboard_comparable": result.leaderboard_comparable,
            "grading_mode": result.provenance.get("grading_mode", ""), "commit": result.provenance.get(
                "software", {}).get("commit", ""),
            "hardware": json.dumps(result.provenance.get("hardware", {}), sort_keys=True),
            "provenance_key": provenance_key(result.provenance),
            **({"agent_command": json.dumps(config.command, default=str, sort_keys=True)} if config.command else {})}


def llm_call_metrics(env: MLEEnvironment) -> list[dict[str, float | None]]:
    """Per-call MLflow metrics of the LLM gateway (logged as ``llm_call_<name>`` at each call index)."""
    calls = [call for s in env.history for call in s.agent.get("llm", [])]
    return [{"tokens": c.get("tokens"), "cost_usd": c.get("cost_usd"), "latency_s": c.get("latency_s"),
             "status": c.get("status")} for c in calls]


def step_metrics(env: MLEEnvironment) -> list[dict[str, float | None]]:
    """Per-step MLflow metrics (logged as ``step_<name>`` at each step index)."""
    return [{"reward": s.reward, "feedback_score": s.feedback_score, "duration_s": s.duration_s,
             **{k: (s.execution or {}).get(k) for k in ("cpu_s", "peak_memory_mb", "gpu_peak_memory_mb")}}
            for s in env.history]


def _save_partial(env: MLEEnvironment, config: EpisodeConfig) -> None:
    """The trajectory of an interrupted episode (its steps so far), so nothing it did is lost."""
    from dojoflow.storage.trajectory import write_trajectory

    header = {"episode_id": env.episode_id, "task_id": config.task_id, "agent": config.agent, "seed": config.seed,
              "interrupted": True, "final_reason": "interrupted (SIGINT or SIGTERM) before the final grade",
              "valid": False, "score": None, "medal": None, "human_rank": 0.0, "steps": len(env.history),
              "initial_observation": env.initial_observation}
    try:
        write_trajectory(env.episode_dir / "trajectory.jsonl", header, env.history)
    except OSError:
        pass  # nothing more can be saved


class EpisodeSteps(NamedTuple):
    """The DAG's steps; the Prefect flow passes task-wrapped versions of the same functions."""

    data_prep: Callable
    agent_step: Callable
    execution: Callable
    feedback_grading: Callable
    final_grading: Callable
    integrity_check: Callable
    record: Callable
    agent_run: Callable = agent_run  # a command agent's whole run: the execution step of its episode


PLAIN_STEPS = EpisodeSteps(data_prep, agent_step, execution, feedback_grading, final_grading, integrity_check,
                           record, agent_run)


class _Timed:
    """Sums the seconds spent in each DAG step (for ``EpisodeResult.timings`` and the benchmarks)."""

    def __init__(self, steps: EpisodeSteps) -> None:
        self.steps, self.seconds = steps, dict.fromkeys(EpisodeSteps._fields, 0.0)

    def __getattr__(self, name: str) -> Callable:
        fn = getattr(self.steps, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
        return timed


def drive_episode(config: EpisodeConfig, steps: EpisodeSteps = PLAIN_STEPS, settings: Settings | None = None,
                  flow_run_id: str | None = None, agent: Agent | None = None,
                  spec: TaskSpec | None = None) -> EpisodeResult:
    """Run one episode through ``steps``; the same loop serves the plain and the Prefect paths."""
    settings = settings or get_settings()
    spec = spec or get_task(config.task_id)
    with contextlib.ExitStack() as stack:
        gpu = stack.enter_context(GpuPool().lease()) if spec.resources.gpu and detect_gpus() \
            else None  # a task where a GPU helps still runs on CPU where there is none
        return _drive(config, spec, _Timed(steps), settings, flow_run_id, agent, gpu)


def _drive(config: EpisodeConfig, spec: TaskSpec, steps: _Timed, settings: Settings, flow_run_id: str | None,
           agent: Agent | None, gpu: int | None) -> EpisodeResult:
    if config.command is not None:
        return _drive_command(config, spec, steps, settings, flow_run_id, gpu)
    started = time.monotonic()
    env, observation, _ = steps.data_prep(config, spec, settings, gpu)
    try:
        agent = agent or make_agent(config.agent, **config.agent_options)
        if hasattr(agent, "set_episode_dir"):  # LLM scaffolds keep their logs (e.g. AIDE's tree) with the episode
            agent.set_episode_dir(env.episode_dir)
        agent.reset(observation, config.seed)
        done = False
        while not done:
            raw_action, agent_info = steps.agent_step(agent, observation)
            action, invalid = env.parse_action(raw_action)
            result = steps.execution(env, action) if action is not None and action.type in CODE_ACTIONS else None
            observation, _, terminated, truncated, _ = steps.feedback_grading(env, action, result, invalid,
                                                                              agent_info)
            done = terminated or truncated
        steps.final_grading(env)
        integrity = steps.integrity_check(env)
    except KeyboardInterrupt:  # SIGINT / SIGTERM: keep what the episode did before it stops
        _save_partial(env, config)
        raise
    finally:
        if agent is not None and hasattr(agent, "close"):  # e.g. an LLM scaffold's gateway
            agent.close()
        env.close()
    return _finish(env, config, steps, integrity, started, flow_run_id)


def _finish(env: MLEEnvironment, config: EpisodeConfig, steps: _Timed, integrity: dict[str, Any], started: float,
            flow_run_id: str | None, run: CommandRun | None = None) -> EpisodeResult:
    episode = summarize(env, config.agent, time.monotonic() - started, integrity, sweep_id=config.sweep_id,
                        episode_key=config.episode_key, agent_options=config.agent_options)
    if run is not None:
        episode.ended_by, episode.end_reason = run.ended_by, run.end_reason
        episode.sandbox = run.result.backend  # where the program ran (the warm mode's inner backend)
    episode.flow_run_id = flow_run_id
    episode.timings = {name: round(seconds, 4) for name, seconds in steps.seconds.items()}
    episode = steps.record(env, config, episode)
    episode.timings["record"] = round(steps.seconds["record"], 4)
    return episode


def _drive_command(config: EpisodeConfig, spec: TaskSpec, steps: _Timed, settings: Settings,
                   flow_run_id: str | None, gpu: int | None) -> EpisodeResult:
    """A command agent's episode: data-prep, the agent's run (execution), final-grading, integrity-check,
    record."""
    check_ready(CommandAgentSpec.from_dict(config.command or {}))  # bad options fail before any work
    started = time.monotonic()
    env, _, _ = steps.data_prep(config, spec, settings, gpu)
    try:
        run = steps.agent_run(env, config)
        steps.final_grading(env, run.final_step, run.final_reason)
        integrity = steps.integrity_check(env, run)
    except KeyboardInterrupt:
        _save_partial(env, config)
        raise
    finally:
        env.close()
    return _finish(env, config, steps, integrity, started, flow_run_id, run)
