"""Reward modes. All are computed from feedback on the public part of the test rows, never the private part.

- ``human_rank`` (default): HumanRank of the feedback score on the task's (public) leaderboard; 0 if invalid
- ``score``: the raw feedback score (sign flipped for lower-is-better metrics so that higher is better)
- ``improvement``: how much the step improved the best valid feedback score so far (0 if it did not)
- ``milestone`` (after SandMLE): the highest milestone the step's submission reaches on the public
  leaderboard: format ok 0.2 (the file parses with the right columns), valid 0.4, above median 0.6,
  bronze 0.8, silver 0.9, gold 1.0; 0 when there is no readable submission
"""

from __future__ import annotations

from dojoflow.errors import UnknownNameError
from dojoflow.tasks_catalog.grading import GradeResult

REWARD_MODES = ("human_rank", "score", "improvement", "milestone")
MILESTONES = {"format_ok": 0.2, "valid": 0.4, "above_median": 0.6, "bronze": 0.8, "silver": 0.9, "gold": 1.0}


def reward_for(mode: str, feedback: GradeResult | None, best_before: float | None, higher_is_better: bool) -> float:
    """Reward of one code step given its feedback grade and the best feedback score before it."""
    if mode not in REWARD_MODES:
        raise UnknownNameError(f"unknown reward mode '{mode}'; choose one of {', '.join(REWARD_MODES)}")
    if mode == "milestone" and feedback is not None:
        return milestone_reward(feedback)
    if feedback is None or not feedback.valid or feedback.score is None:
        return 0.0
    sign = 1.0 if higher_is_better else -1.0
    if mode == "human_rank":
        return feedback.placement.human_rank if feedback.placement is not None else 0.0
    if mode == "score":
        return sign * feedback.score
    if best_before is None:
        return 0.0
    return max(0.0, sign * (feedback.score - best_before))


def milestone_reward(feedback: GradeResult) -> float:
    """The highest milestone reached (see the module docstring)."""
    placement = feedback.placement
    if not feedback.valid or placement is None:
        return MILESTONES["format_ok"] if feedback.format_ok else 0.0
    if placement.medal:
        return MILESTONES[placement.medal]
    return MILESTONES["above_median"] if placement.above_median else MILESTONES["valid"]
