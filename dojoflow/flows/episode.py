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
from dojoflow.dojo.flags import run_flags
from dojoflow.dojo.integrity import run_integrity_checks
from dojoflow.dojo.observation import Observation
from dojoflow.dojo.summary import EpisodeResult, summarize
from dojoflow.dojo.workspace_files import WORKSPACE_AT_END
from dojoflow.flows.config import EpisodeConfig
from dojoflow.flows.failures import is_interruption
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
                         sandbox=config.sandbox, settings=settings, gpu=gpu, episode_id=config.episode_id,
                         wall_time_s=config.wall_time_s, cost_budget_usd=config.cost_budget_usd,
                         feedback=config.protocol, audit_access=config.audits_access,
                         description=config.description)
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


def integrity_check(env: MLEEnvironment, command_run: CommandRun | None = None,
                    config: EpisodeConfig | None = None) -> dict[str, Any]:
    """Was the result earned? (re-run in an emptied workspace, non-constant predictions; for a command agent
    the checks of ``agents/external/integrity.py``), then the integrity flags ``config`` chose
    (``dojo/flags.py``: evidence only, never a change of score)."""
    if command_run is not None:
        integrity = run_command_integrity_checks(env, command_run)
    elif env.chosen_submission is None:
        integrity = {"passed": False, "checks": [], "skipped": "no final submission"}
    else:
        integrity = run_integrity_checks(env)
    if config is not None:
        integrity.update(run_flags(env, config.integrity, config.agent, config.judge, config.agent_options))
    return integrity


def record(env: MLEEnvironment, config: EpisodeConfig, result: EpisodeResult,
           tracker: EpisodeTracker | None = None) -> EpisodeResult:
    """Trajectory to JSONL (and Markdown), the results row, episode files to the artifact store and the
    episode's MLflow run filled and ended (each delivered now or parked in the outbox for a later flush: see
    ``storage/recording.py``)."""
    from dojoflow.storage.recording import flush_pending, record_artifacts
    from dojoflow.storage.results import write_result

    settings = env.settings
    tracker = tracker or EpisodeTracker(config, settings, result.flow_run_id)
    tracker.describe(result)
    write_episode_pages(env.episode_dir, result, env.history, tracker.links())
    row_file = write_result(settings.results_dir, result.results_row())
    flush_pending(settings)  # deliver what an earlier outage left behind
    files = {f"episodes/{env.episode_id}/{p.relative_to(env.episode_dir).as_posix()}": p
             for p in _episode_files(env.episode_dir)}
    files[f"results/{row_file.name}"] = row_file
    result.artifacts_uri, result.storage_error = record_artifacts(settings, env.episode_id, files)
    if config.track:
        artifacts = {name: env.episode_dir / name for name in ("steps", "agent", *EPISODE_PAGES)}
        if env.chosen_submission is not None:
            artifacts["final_submission.csv"] = env.chosen_submission
        # a command agent's code, logs and validation records; the LLM gateway's records (any agent using it)
        artifacts.update({name: env.episode_dir / name for name in COMMAND_ARTIFACTS
                          if (env.episode_dir / name).exists()})
        tracker.finish(result, tracking_params(config, result), step_metrics(env), artifacts,
                       call_metrics=llm_call_metrics(env))
    return result


EPISODE_PAGES = ("trajectory.jsonl", "trajectory.md", "summary.md")


def write_episode_pages(episode_dir: Path, result: EpisodeResult, history: list, links: dict[str, str]) -> None:
    """``trajectory.jsonl`` (the record), ``trajectory.md`` and ``summary.md`` (the same, to read)."""
    from dataclasses import asdict

    from dojoflow.reporting.episode import summary_markdown, trajectory_markdown
    from dojoflow.storage.trajectory import write_trajectory

    header = result.trajectory_header()
    write_trajectory(episode_dir / "trajectory.jsonl", header, history)
    steps = [asdict(s) for s in history]
    (episode_dir / "trajectory.md").write_text(trajectory_markdown(header, steps))
    (episode_dir / "summary.md").write_text(summary_markdown(result.to_dict(), links))


class EpisodeTracker:
    """The episode's MLflow run over its life: created RUNNING when the episode starts, ended FINISHED by
    the record step, FAILED when the harness could not finish the episode, KILLED when it was interrupted.

    Tracking never stops an episode: when the server cannot take the run at the start, the record step
    creates it (with the episode's start time) or parks it in the outbox."""

    def __init__(self, config: EpisodeConfig, settings: Settings, flow_run_id: str | None = None,
                 attempt: int = 1) -> None:
        self.config, self.settings, self.flow_run_id, self.attempt = config, settings, flow_run_id, attempt
        self.started_ms = int(time.time() * 1000)
        self.run_id: str | None = None
        self.experiment_id: str | None = None

    @property
    def name(self) -> str:
        return self.config.episode_id or self.config.run_name

    def tags(self) -> dict[str, str]:
        """Tags set at the start (identity, links, parent) and again at the end."""
        from dojoflow.links import flow_run_url

        c = self.config
        tags = {"dojoflow.episode_id": self.name, "dojoflow.task": c.task_id, "dojoflow.agent": c.agent,
                "dojoflow.seed": str(c.seed), "dojoflow.model": str(c.agent_options.get("model") or ""),
                "dojoflow.flow_run_id": self.flow_run_id or "", "dojoflow.sweep_id": c.sweep_id or "",
                "dojoflow.episode_key": c.episode_key or "", "dojoflow.kind": "episode",
                "dojoflow.prefect_url": flow_run_url(self.settings, self.flow_run_id)}
        if c.parent_run_id:
            tags["mlflow.parentRunId"] = c.parent_run_id
        return tags

    def start(self) -> EpisodeTracker:
        """Create the RUNNING run (best effort); returns self."""
        if not self.config.track:
            return self
        from dojoflow.storage.tracking import start_episode_run

        tags = {**self.tags(), "mlflow.note.content": f"Episode `{self.name}`: running "
                                                      f"({self.config.agent} on {self.config.task_id})."}
        try:
            self.run_id, self.experiment_id = start_episode_run(self.settings, self.name, start_params(self.config),
                                                                tags, self.name)
        except Exception:  # noqa: BLE001 - tracking is down: the record step creates or parks the run
            self.run_id = None
        return self

    def links(self) -> dict[str, str]:
        """Where the episode is in the two UIs."""
        from dojoflow.links import flow_run_url, mlflow_run_url

        return {"Prefect flow run": flow_run_url(self.settings, self.flow_run_id),
                "MLflow run": mlflow_run_url(self.settings, self.experiment_id, self.run_id)}

    def describe(self, result: EpisodeResult) -> None:
        """Put the run's id and both UI links on the result (the trajectory header then has them)."""
        links = self.links()
        result.mlflow_run_id = self.run_id
        result.mlflow_url, result.prefect_url = links["MLflow run"], links["Prefect flow run"]

    def finish(self, result: EpisodeResult, params: dict[str, Any], steps: list[dict[str, float | None]],
               artifacts: dict[str, Path], status: str = "FINISHED",
               call_metrics: list[dict[str, float | None]] | None = None) -> None:
        """Fill and end the run (or park it); sets ``result.mlflow_run_id`` / ``tracking_error``.
        ``call_metrics``: the LLM gateway's per-call figures."""
        from dojoflow.reporting.episode import summary_markdown
        from dojoflow.storage.recording import TrackedRun, record_tracking

        tags = {**self.tags(), "dojoflow.status": result.status, "dojoflow.end_reason": result.end_reason[:5000],
                "dojoflow.error_class": result.error_class, "dojoflow.medal": result.medal or "none",
                "dojoflow.integrity_flags": ",".join(result.integrity_flags) or "none",
                "dojoflow.description_variant": result.description_variant,
                "mlflow.note.content": summary_markdown(result.to_dict(), self.links()),
                **({"dojoflow.ended_by": result.ended_by} if result.ended_by else {})}
        run = TrackedRun(self.name, self.name, params, result.metrics(), steps, tags,
                         {k: v for k, v in artifacts.items() if v.exists()}, call_metrics=list(call_metrics or []),
                         run_id=self.run_id, status=status, start_time_ms=self.started_ms)
        result.mlflow_run_id, result.tracking_error = record_tracking(self.settings, run)

    def kill(self) -> None:
        """An interrupted episode: its run ends KILLED (quickly, best effort)."""
        if self.run_id is None:
            return
        from dojoflow.storage.tracking import end_run

        try:
            end_run(self.settings, self.run_id, "KILLED", {"dojoflow.status": "interrupted",
                                                           "dojoflow.end_reason": "interrupted (SIGINT or SIGTERM)"})
        except Exception:  # noqa: BLE001 - the interruption wins; the run stays RUNNING
            pass


def start_params(config: EpisodeConfig) -> dict[str, Any]:
    """The params known before the episode runs (the rest come with :func:`tracking_params`)."""
    return {"task": config.task_id, "agent": config.agent, "seed": config.seed, "max_steps": config.max_steps,
            "reward_mode": config.reward_mode, "feedback_protocol": config.protocol,
            "integrity_checks": ",".join(config.integrity), "description_variant": config.description,
            "model": config.agent_options.get("model") or (config.command or {}).get("model") or "",
            "agent_options": json.dumps(config.agent_options, default=str, sort_keys=True),
            **({"agent_command": json.dumps(config.command, default=str, sort_keys=True)} if config.command else {})}


def _episode_files(episode_dir: Path) -> list[Path]:
    return [p for p in sorted(episode_dir.rglob("*"))
            if p.is_file() and p.relative_to(episode_dir).parts[0] not in NOT_ARTIFACTS]


def tracking_params(config: EpisodeConfig, result: EpisodeResult) -> dict[str, Any]:
    """The MLflow params of an episode: what it was, and what it ran on."""
    import sklearn

    return {**start_params(config), "sandbox": result.sandbox, "dojoflow_version": __version__,
            "sklearn_version": sklearn.__version__, "python": platform.python_version(),
            "host": socket.gethostname(), "user": getpass.getuser(),
            "leaderboard_provenance": result.leaderboard_provenance, "metric": result.metric,
            "higher_is_better": result.higher_is_better, "leaderboard_comparable": result.leaderboard_comparable,
            "grading_mode": result.provenance.get("grading_mode", ""), "commit": result.provenance.get(
                "software", {}).get("commit", ""),
            "hardware": json.dumps(result.provenance.get("hardware", {}), sort_keys=True),
            "provenance_key": provenance_key(result.provenance)}


def llm_call_metrics(env: MLEEnvironment) -> list[dict[str, float | None]]:
    """Per-call MLflow metrics of the LLM gateway (logged as ``llm_call_<name>`` at each call index)."""
    calls = [call for s in env.history for call in s.agent.get("llm", [])]
    return [{"tokens": c.get("tokens"), "cost_usd": c.get("cost_usd"), "latency_s": c.get("latency_s"),
             "status": c.get("status")} for c in calls]


def step_metrics(env: MLEEnvironment) -> list[dict[str, float | None]]:
    """Per-step MLflow metrics (logged as ``step_<name>`` at each step index).

    ``step_reward`` is logged for steps that were graded (code steps); a submit, info or history step has no
    feedback of its own, and logging its 0 would draw a collapse at the end of every episode's chart."""
    return [{"reward": s.reward if s.feedback_score is not None or s.execution else None,
             "feedback_score": s.feedback_score, "duration_s": s.duration_s,
             **{k: (s.execution or {}).get(k) for k in ("cpu_s", "peak_memory_mb", "gpu_peak_memory_mb")}}
            for s in env.history]


def _save_partial(env: MLEEnvironment, config: EpisodeConfig, reason: str) -> None:
    """The trajectory of an episode that did not finish (its steps so far), so nothing it did is lost."""
    from dojoflow.storage.trajectory import write_trajectory

    header = {"episode_id": env.episode_id, "task_id": config.task_id, "agent": config.agent, "seed": config.seed,
              "interrupted": reason.startswith("interrupted"), "final_reason": reason, "end_reason": reason,
              "valid": False, "score": None, "medal": None, "human_rank": 0.0, "steps": len(env.history),
              "initial_observation": env.initial_observation}
    try:
        write_trajectory(env.episode_dir / "trajectory.jsonl", header, env.history)
    except OSError:
        pass  # nothing more can be saved


def record_failure(config: EpisodeConfig, settings: Settings, exc: BaseException, tracker: EpisodeTracker,
                   env: MLEEnvironment | None, wall_time_s: float, spec: TaskSpec | None) -> EpisodeResult:
    """An episode the harness could not finish still gets its results row (status ``failed``, end reason,
    error class), its partial trajectory and summary, and its MLflow run, ended FAILED."""
    from dojoflow.flows.failures import classify_error, describe
    from dojoflow.storage.recording import record_artifacts
    from dojoflow.storage.results import write_result

    episode_id = tracker.name
    episode_dir = env.episode_dir if env is not None else settings.episodes_dir / episode_id
    result = EpisodeResult.failed(
        task_id=config.task_id, agent=config.agent, seed=config.seed, episode_id=episode_id,
        episode_dir=str(episode_dir), error=describe(exc), error_class=classify_error(exc), wall_time_s=wall_time_s,
        steps=len(env.history) if env is not None else 0, model=str(config.agent_options.get("model") or ""),
        sweep_id=config.sweep_id, episode_key=config.episode_key, metric=spec.metric_name if spec else "",
        higher_is_better=spec.higher_is_better if spec else True,
        leaderboard_provenance=spec.leaderboard.provenance if spec else "", max_steps=config.max_steps)
    result.flow_run_id, result.attempt = tracker.flow_run_id, tracker.attempt
    tracker.describe(result)
    try:
        episode_dir.mkdir(parents=True, exist_ok=True)
        if env is not None:
            _save_partial(env, config, f"failed: {result.end_reason}")
        (episode_dir / "summary.md").write_text(_summary(result, tracker))
        row_file = write_result(settings.results_dir, result.results_row())
        result.artifacts_uri, result.storage_error = record_artifacts(
            settings, episode_id, {f"results/{row_file.name}": row_file})
    except OSError as error:  # a full disk must not hide the original failure
        result.storage_error = f"{type(error).__name__}: {error}"
    if config.track:
        artifacts = {name: episode_dir / name for name in ("steps", "agent", "trajectory.jsonl", "summary.md")}
        tracker.finish(result, start_params(config), step_metrics(env) if env is not None else [], artifacts,
                       status="FAILED")
    return result


def _summary(result: EpisodeResult, tracker: EpisodeTracker) -> str:
    from dojoflow.reporting.episode import summary_markdown

    return summary_markdown(result.to_dict(), tracker.links())


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
                  flow_run_id: str | None = None, agent: Agent | None = None, spec: TaskSpec | None = None,
                  attempt: int = 1, log: Callable[[str], None] | None = None,
                  failures: list[EpisodeResult] | None = None) -> EpisodeResult:
    """Run one episode through ``steps``; the same loop serves the plain and the Prefect paths.

    The episode's MLflow run is created first (RUNNING). An exception that stops the episode (a task whose
    preparation fails, a sandbox that cannot start, a bug) is recorded by :func:`record_failure` - appended
    to ``failures`` when given - and raised again; SIGINT / SIGTERM end the run KILLED and keep the partial
    trajectory. ``log`` receives one progress line per step."""
    settings = settings or get_settings()
    config = config.with_identity()
    started = time.monotonic()
    tracker = EpisodeTracker(config, settings, flow_run_id, attempt).start()
    progress = _Progress()
    try:
        spec = spec or get_task(config.task_id)
        progress.spec = spec
        with contextlib.ExitStack() as stack:
            gpu = stack.enter_context(GpuPool().lease()) if spec.resources.gpu and detect_gpus() \
                else None  # a task where a GPU helps still runs on CPU where there is none
            return _drive(config, spec, _Timed(steps), settings, agent, gpu, tracker, progress, log)
    except BaseException as exc:
        if is_interruption(exc):  # SIGINT / SIGTERM: keep what the episode did before it stops
            if progress.env is not None:
                _save_partial(progress.env, config, "interrupted (SIGINT or SIGTERM) before the final grade")
            tracker.kill()
            raise
        if not isinstance(exc, Exception):
            raise  # SystemExit, a Prefect control signal: not the episode's failure
        failed = record_failure(config, settings, exc, tracker, progress.env, time.monotonic() - started,
                                progress.spec)
        if failures is not None:
            failures.append(failed)
        raise


class _Progress:
    """What an episode has built so far (for the record of one that fails)."""

    env: MLEEnvironment | None = None
    spec: TaskSpec | None = None


def _drive(config: EpisodeConfig, spec: TaskSpec, steps: _Timed, settings: Settings, agent: Agent | None,
           gpu: int | None, tracker: EpisodeTracker, progress: _Progress,
           log: Callable[[str], None] | None) -> EpisodeResult:
    from dojoflow.reporting.episode import step_line

    if config.command is not None:
        return _drive_command(config, spec, steps, settings, gpu, tracker, progress)
    started = time.monotonic()
    env, observation, _ = steps.data_prep(config, spec, settings, gpu)
    progress.env = env
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
            if log is not None and env.history:
                from dataclasses import asdict

                log(step_line(asdict(env.history[-1]), config.max_steps))
        steps.final_grading(env)
        integrity = steps.integrity_check(env, None, config)
    finally:
        if agent is not None and hasattr(agent, "close"):  # e.g. an LLM scaffold's gateway
            agent.close()
        env.close()
    return _finish(env, config, steps, integrity, started, tracker)


def _finish(env: MLEEnvironment, config: EpisodeConfig, steps: _Timed, integrity: dict[str, Any], started: float,
            tracker: EpisodeTracker, run: CommandRun | None = None) -> EpisodeResult:
    episode = summarize(env, config.agent, time.monotonic() - started, integrity, sweep_id=config.sweep_id,
                        episode_key=config.episode_key, agent_options=config.agent_options)
    if run is not None:
        episode.ended_by, episode.end_reason = run.ended_by, run.end_reason
        episode.sandbox = run.result.backend  # where the program ran (the warm mode's inner backend)
    episode.flow_run_id, episode.attempt = tracker.flow_run_id, tracker.attempt
    episode.timings = {name: round(seconds, 4) for name, seconds in steps.seconds.items()}
    episode = steps.record(env, config, episode, tracker)
    episode.timings["record"] = round(steps.seconds["record"], 4)
    return episode


def _drive_command(config: EpisodeConfig, spec: TaskSpec, steps: _Timed, settings: Settings, gpu: int | None,
                   tracker: EpisodeTracker, progress: _Progress) -> EpisodeResult:
    """A command agent's episode: data-prep, the agent's run (execution), final-grading, integrity-check,
    record (an interruption or a harness failure is recorded by :func:`drive_episode`)."""
    check_ready(CommandAgentSpec.from_dict(config.command or {}))  # bad options fail before any work
    started = time.monotonic()
    env, _, _ = steps.data_prep(config, spec, settings, gpu)
    progress.env = env
    try:
        run = steps.agent_run(env, config)
        steps.final_grading(env, run.final_step, run.final_reason)
        integrity = steps.integrity_check(env, run, config)
    finally:
        env.close()
    return _finish(env, config, steps, integrity, started, tracker, run)
