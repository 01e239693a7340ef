"""What an episode records: one :class:`StepRecord` per step and the :class:`Outcome` (the chosen
submission and its final grade). Plain data, shared by the environment, observations, trajectories and
exports.

Vocabulary: *feedback* is a grade on the public part of the hidden test rows (during the episode); the
*final* grade is on the private part, of the submission the agent chose (or the best by feedback); the
``final_step`` is the step whose submission was chosen, the ``final_reason`` why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dojoflow.tasks_catalog.grading import GradeResult


@dataclass
class StepRecord:
    """One step of the trajectory, as recorded and exported."""

    index: int
    action: dict[str, Any]
    observation: str
    reward: float
    valid_submission: bool | None = None
    feedback_score: float | None = None
    feedback_human_rank: float | None = None
    feedback_medal: str | None = None  # the medal band of the feedback score on the public board
    errors: list[str] = field(default_factory=list)
    execution: dict[str, Any] | None = None
    duration_s: float = 0.0
    agent: dict[str, Any] = field(default_factory=dict)  # agent-side info: tokens, cost, notes


@dataclass(frozen=True)
class Outcome:
    """The chosen submission (``step``; None when there was no valid one), why, and its final grade."""

    step: int | None
    reason: str
    grade: GradeResult


@dataclass(frozen=True)
class Usage:
    """What the agent reported spending over the episode (LLM agents report it per step)."""

    tokens: int = 0
    cost_usd: float = 0.0
    llm_calls: int = 0
    cache_hits: int = 0
    llm_errors: int = 0
    truncated_replies: int = 0  # cut off at max_tokens
    context_trims: int = 0

    @classmethod
    def of(cls, history: list[StepRecord]) -> Usage:
        """Summed over the steps' agent info."""
        def total(name: str) -> int:
            return int(sum(int(s.agent.get(name, 0) or 0) for s in history))

        return cls(tokens=total("tokens"), cost_usd=float(sum(float(s.agent.get("cost_usd", 0.0) or 0.0)
                                                              for s in history)),
                   llm_calls=total("llm_calls"), cache_hits=total("cache_hits"),
                   llm_errors=int(sum(len(s.agent.get("llm_errors") or []) for s in history)),
                   truncated_replies=total("truncated_replies"), context_trims=total("context_trims"))
