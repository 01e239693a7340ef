"""The episode summary: computed once when an episode ends, and the one source of everything that
reports on it - the result the CLI prints, the trajectory header, the results-table row and the MLflow
metrics.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dojoflow.provenance import episode_provenance, provenance_key

if TYPE_CHECKING:
    from dojoflow.dojo.env import MLEEnvironment


@dataclass
class EpisodeResult:
    """What an episode produced: its final grade, its budget use, where its records are.

    The orchestration fields (``mlflow_run_id``, ``flow_run_id``, ``artifacts_uri``, ``storage_error``) are
    filled in by the record step; the gym environment leaves them empty.
    """

    task_id: str
    agent: str
    seed: int
    episode_id: str
    valid: bool
    score: float | None
    medal: str | None
    above_median: bool
    human_rank: float
    position: int | None
    leaderboard_provenance: str
    final_step: int | None
    final_reason: str
    errors: list[str]
    steps: int
    wall_time_s: float
    integrity: dict[str, Any]
    sandbox: str
    sandbox_isolated: bool
    episode_dir: str
    metric: str = ""
    higher_is_better: bool = True
    task_splits: str = ""
    reward_mode: str = ""
    max_steps: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    llm_calls: int = 0
    llm_cache_hits: int = 0
    llm_errors: int = 0
    llm_truncated_replies: int = 0  # replies cut off at max_tokens
    llm_context_trims: int = 0
    model: str = ""  # the LLM behind the agent ("" for a non-LLM agent)
    status: str = "completed"  # completed (graded, valid or not) or failed (the harness could not finish it)
    end_reason: str = ""  # why the episode ended, in one line (the agent's reason, a budget, or the error)
    error_class: str = ""  # for failed episodes: task, agent or infrastructure (see flows/failures.py)
    attempt: int = 1  # Prefect's run count of the episode's flow run (a retry is the same episode again)
    sandbox_startup_s: float = 0.0  # the sandbox's own start-up (a warm worker importing its libraries)
    ended_by: str = ""  # command agents: exit, crash, wall-time, idle, token-budget, cost-budget, ...
    sweep_id: str | None = None
    episode_key: str | None = None  # (sweep, agent, task, seed) for sweep episodes: recorded at most once
    mlflow_run_id: str | None = None
    flow_run_id: str | None = None
    mlflow_url: str = ""  # the run's page in the MLflow UI
    prefect_url: str = ""  # the flow run's page in the Prefect UI
    artifacts_uri: str | None = None
    storage_error: str | None = None  # set when the store was unreachable: files wait in the outbox
    tracking_error: str | None = None  # set when MLflow was unreachable: the run waits in the outbox
    timings: dict[str, float] = field(default_factory=dict)  # seconds per DAG step
    feedback_protocol: str = "public-test"  # what the agent learned during the episode (dojo/feedback.py)
    leaderboard_comparable: bool = False  # no test-derived signal: comparable with MLE-bench's board
    provenance: dict[str, Any] = field(default_factory=dict)  # how the result was obtained (provenance.py)
    feedback_board: str = ""  # where feedback was placed: public, public_score, private ("" when unscored)
    best_feedback_human_rank: float | None = None  # the best feedback HumanRank on that board
    best_feedback_medal: str | None = None  # the best medal band feedback reached on that board
    description_variant: str = "original"  # the contamination probe's variant (dojo/obfuscation.py)
    grading_mode: str = ""  # how the final grade judged (tasks_catalog.grading.GRADING_MODES)
    score_all_rows: float | None = None  # the final submission on every answer row (MLE-bench's own number)
    submission_path: str = ""  # the file that received the final grade
    initial_observation: str = field(default="", repr=False)
    trajectory: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def integrity_flags(self) -> list[str]:
        """The integrity flags raised (``dojo/flags.py``): evidence for a reader, never a change of score."""
        return list(self.integrity.get("flags", []))

    @property
    def plagiarism_score(self) -> float | None:
        """The final code's highest similarity with a reference solution (None: not checked)."""
        score = self.integrity.get("plagiarism_score")
        return None if score is None else float(score)

    # -- the views ------------------------------------------------------------------------------------------
    def to_dict(self, with_trajectory: bool = False) -> dict[str, Any]:
        """The result as printed by ``dojoflow run --json`` (the trajectory only when asked for)."""
        data = asdict(self)
        data.pop("initial_observation")
        if not with_trajectory:
            data.pop("trajectory")
        return data

    def trajectory_header(self) -> dict[str, Any]:
        """The first line of ``trajectory.jsonl``."""
        header = self.to_dict()
        header["initial_observation"] = self.initial_observation
        return header

    def results_row(self) -> dict[str, Any]:
        """The episode's row in the results table (see :data:`dojoflow.storage.results.COLUMNS`)."""
        return {
            "sweep_id": self.sweep_id or "", "episode_key": self.episode_key or "", "episode_id": self.episode_id,
            "agent": self.agent, "task": self.task_id, "task_splits": self.task_splits, "seed": self.seed,
            "valid": self.valid, "score": self.score, "higher_is_better": self.higher_is_better,
            "medal": self.medal, "gold": self.medal == "gold", "any_medal": self.medal is not None,
            "above_median": self.above_median, "human_rank": self.human_rank, "steps": self.steps,
            "wall_time_s": self.wall_time_s, "tokens": self.tokens, "cost_usd": self.cost_usd,
            "integrity_passed": bool(self.integrity.get("passed")),
            "leaderboard_provenance": self.leaderboard_provenance,
            "model": self.model or str(self.provenance.get("model", "")), "status": self.status,
            "end_reason": self.end_reason, "error_class": self.error_class,
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "feedback_protocol": self.feedback_protocol, "leaderboard_comparable": self.leaderboard_comparable,
            "provenance": json.dumps(self.provenance, sort_keys=True, default=str),
            "provenance_key": provenance_key(self.provenance) if self.provenance else "",
            "feedback_board": self.feedback_board, "best_feedback_human_rank": self.best_feedback_human_rank,
            "best_feedback_medal": self.best_feedback_medal,
            "integrity_flags": ",".join(self.integrity_flags), "description_variant": self.description_variant,
            "plagiarism_score": self.plagiarism_score,
            "grading_mode": self.grading_mode,
            "score_all_rows": float("nan") if self.score_all_rows is None else self.score_all_rows,
            "submission_path": self.submission_path,
        }

    def metrics(self) -> dict[str, float | None]:
        """The final metrics of the episode's MLflow run."""
        medals = {tier: float(self.medal == tier) for tier in MEDAL_TIERS}
        return {"valid": float(self.valid), "score": self.score, "human_rank": self.human_rank,
                "above_median": float(self.above_median), "any_medal": float(self.medal is not None), **medals,
                "medal_rank": float(MEDAL_RANK.get(self.medal or "", 0)), "steps": float(self.steps),
                "wall_time_s": self.wall_time_s, "integrity_passed": float(bool(self.integrity.get("passed"))),
                "failed": float(self.status == "failed"), "llm_tokens": float(self.tokens), "cost_usd": self.cost_usd,
                "llm_calls": float(self.llm_calls), "llm_cache_hits": float(self.llm_cache_hits),
                "llm_errors": float(self.llm_errors), "llm_truncated_replies": float(self.llm_truncated_replies),
                "llm_context_trims": float(self.llm_context_trims),
                "integrity_flags": float(len(self.integrity_flags)), "plagiarism_score": self.plagiarism_score}

    @classmethod
    def failed(cls, *, task_id: str, agent: str, seed: int, episode_id: str, episode_dir: str, error: str,
               error_class: str, wall_time_s: float, steps: int = 0, model: str = "", sweep_id: str | None = None,
               episode_key: str | None = None, metric: str = "", higher_is_better: bool = True,
               leaderboard_provenance: str = "", max_steps: int = 0) -> EpisodeResult:
        """The result of an episode the harness could not finish: no grade, the error as its end reason."""
        return cls(task_id=task_id, agent=agent, seed=seed, episode_id=episode_id, valid=False, score=None, medal=None,
                   above_median=False, human_rank=0.0, position=None, leaderboard_provenance=leaderboard_provenance,
                   final_step=None, final_reason=f"failed: {error}", errors=[error], steps=steps,
                   wall_time_s=round(wall_time_s, 3), integrity={}, sandbox="", sandbox_isolated=False,
                   episode_dir=episode_dir, metric=metric, higher_is_better=higher_is_better, max_steps=max_steps,
                   model=model, status="failed", end_reason=error, error_class=error_class, sweep_id=sweep_id,
                   episode_key=episode_key)


MEDAL_TIERS = ("gold", "silver", "bronze")
MEDAL_RANK = {"gold": 3, "silver": 2, "bronze": 1}  # the medal as a number, for a chart across episodes


def end_reason(env: MLEEnvironment) -> str:
    """Why the episode ended: the agent's own reason (LLM scaffolds say it), an agent crash, a budget, or the
    agent's submit."""
    last = env.history[-1] if env.history else None
    agent = last.agent if last else {}
    if agent.get("end_reason"):
        return str(agent["end_reason"])
    if agent.get("agent_error"):
        return f"the agent raised {agent['agent_error']}"
    if env.outcome is not None and "budget exhausted" in env.outcome.reason:
        return env.outcome.reason.split(":")[0]
    if last is not None and last.action.get("type") == "submit":
        return "the agent submitted"
    return env.outcome.reason if env.outcome is not None else ""


def best_feedback(env: MLEEnvironment) -> tuple[float | None, str | None]:
    """The best feedback HumanRank and the best medal band over the episode's scored steps."""
    ranks = [s.feedback_human_rank for s in env.history if s.feedback_human_rank is not None]
    medals = [s.feedback_medal for s in env.history if getattr(s, "feedback_medal", None)]
    best_medal = max(medals, key=lambda m: MEDAL_RANK.get(m or "", 0)) if medals else None
    return (max(ranks) if ranks else None), best_medal


def _startup_s(env: MLEEnvironment, integrity: dict[str, Any]) -> float:
    steps = sum(float((s.execution or {}).get("startup_s", 0.0) or 0.0) for s in env.history)
    return round(steps + float(integrity.get("rerun", {}).get("startup_s", 0.0)), 4)


def summarize(env: MLEEnvironment, agent: str, wall_time_s: float, integrity: dict[str, Any] | None = None,
              sweep_id: str | None = None, episode_key: str | None = None,
              agent_options: dict[str, Any] | None = None) -> EpisodeResult:
    """The result of ``env``'s episode (which must have its final grade; see ``MLEEnvironment.grade_final``)."""
    from dojoflow.tasks_catalog.grading import grading_mode

    outcome = env.outcome
    if outcome is None:
        raise ValueError("the episode has no final grade yet")
    grade = outcome.grade
    placement = grade.placement
    usage = env.usage
    best_rank, best_medal = best_feedback(env)
    from dojoflow.tasks_catalog.grading import feedback_board

    return EpisodeResult(
        task_id=env.spec.id, agent=agent, seed=env.seed, episode_id=env.episode_id, valid=grade.valid,
        score=grade.score, medal=grade.medal, above_median=bool(placement and placement.above_median),
        human_rank=placement.human_rank if placement else 0.0, position=placement.position if placement else None,
        leaderboard_provenance=env.spec.leaderboard.provenance, final_step=outcome.step,
        final_reason=outcome.reason, errors=list(grade.errors), steps=len(env.history),
        wall_time_s=round(wall_time_s, 3), integrity=integrity or {}, sandbox=env.sandbox.name,
        sandbox_isolated=env.sandbox.isolated, episode_dir=str(env.episode_dir), metric=env.spec.metric_name,
        higher_is_better=env.spec.higher_is_better, task_splits=env.spec.tags.get("splits", ""),
        reward_mode=env.reward_mode, max_steps=env.max_steps, tokens=usage.tokens, cost_usd=usage.cost_usd,
        llm_calls=usage.llm_calls, llm_cache_hits=usage.cache_hits, llm_errors=usage.llm_errors,
        llm_truncated_replies=usage.truncated_replies, llm_context_trims=usage.context_trims,
        model=str(next((s.agent["model"] for s in env.history if s.agent.get("model")), "")),
        end_reason=end_reason(env), sandbox_startup_s=_startup_s(env, integrity or {}), sweep_id=sweep_id,
        episode_key=episode_key, feedback_protocol=env.feedback.name,
        leaderboard_comparable=env.feedback.leaderboard_comparable,
        provenance=episode_provenance(env, agent_options),
        feedback_board=feedback_board(env.spec) if env.feedback.scored else "",
        best_feedback_human_rank=best_rank, best_feedback_medal=best_medal,
        description_variant=env.description,
        grading_mode=grade.grading_mode if outcome.step is not None else grading_mode(env.spec),
        score_all_rows=grade.score_all_rows, submission_path=str(env.chosen_submission or ""),
        initial_observation=env.initial_observation, trajectory=[asdict(s) for s in env.history])
