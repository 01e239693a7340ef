"""Reward modes. All are computed from feedback on the public part of the test rows, never the private part.

- ``human_rank`` (default): HumanRank of the feedback score on the task's (public) leaderboard; 0 if invalid
- ``public_rank``: HumanRank of the feedback score on the task's *separate public* leaderboard (Kaggle's public
  board, as MLE-Dojo imports carry it), "as on Kaggle's public leaderboard"; a task without one is refused when
  the environment is made (``human_rank`` places feedback on the same board there)
- ``score``: the raw feedback score (sign flipped for lower-is-better metrics so that higher is better)
- ``improvement``: how much the step improved the best valid feedback score so far (0 if it did not)
- ``milestone`` (after SandMLE): the highest milestone the step's submission reaches on the public
  leaderboard: format ok 0.2 (the file parses with the right columns), valid 0.4, above median 0.6,
  bronze 0.8, silver 0.9, gold 1.0; 0 when there is no readable submission
- ``sandmle_release``: SandMLE's reward **as its released code computes it** (``_score_to_reward`` in
  ``examples/deepresearch/deepresearch_workflow.py``): 0.2 for a valid score, plus 0.7 / 0.6 / 0.5 for gold /
  silver / bronze, or 0.1 at least as good as the median, plus 0.1 x the format rate (there: the share of
  assistant messages with a well-formed think block; here: the share of the episode's actions so far that
  parsed as valid actions)
- ``sandmle_paper``: SandMLE's reward **as the paper states it** (arXiv 2604.04872): milestones that add up,
  0.1 format (the action parsed), 0.3 execute (the code ran to the end), 0.1 median (strictly better than the
  median), 0.2 bronze, 0.2 silver, 0.1 gold; 1.0 for gold
"""

from __future__ import annotations

from dojoflow.errors import UnknownNameError
from dojoflow.tasks_catalog.grading import GradeResult

REWARD_MODES = ("human_rank", "public_rank", "score", "improvement", "milestone", "sandmle_release", "sandmle_paper")
MILESTONES = {"format_ok": 0.2, "valid": 0.4, "above_median": 0.6, "bronze": 0.8, "silver": 0.9, "gold": 1.0}
SANDMLE_RELEASE = {"valid": 0.2, "gold": 0.7, "silver": 0.6, "bronze": 0.5, "median": 0.1, "format": 0.1}
SANDMLE_PAPER = {"format": 0.1, "execute": 0.3, "median": 0.1, "bronze": 0.2, "silver": 0.2, "gold": 0.1}


def reward_for(mode: str, feedback: GradeResult | None, best_before: float | None, higher_is_better: bool,
               *, format_rate: float = 1.0, executed: bool = True) -> float:
    """Reward of one code step given its feedback grade and the best feedback score before it.

    ``format_rate`` (share of the episode's actions that parsed) and ``executed`` (the code ran to the end)
    are used by the SandMLE modes only.
    """
    if mode not in REWARD_MODES:
        raise UnknownNameError(f"unknown reward mode '{mode}'; choose one of {', '.join(REWARD_MODES)}")
    if mode == "milestone" and feedback is not None:
        return milestone_reward(feedback)
    if mode == "sandmle_release":
        return sandmle_release_reward(feedback, format_rate)
    if mode == "sandmle_paper":
        return sandmle_paper_reward(feedback, executed)
    if feedback is None or not feedback.valid or feedback.score is None:
        return 0.0
    sign = 1.0 if higher_is_better else -1.0
    if mode in ("human_rank", "public_rank"):  # feedback is placed on the public board when the task has one
        return feedback.placement.human_rank if feedback.placement is not None else 0.0
    if mode == "score":
        return sign * feedback.score
    if best_before is None:
        return 0.0
    return max(0.0, sign * (feedback.score - best_before))


def check_reward_mode(mode: str, spec) -> None:
    """Refuse a reward mode the task cannot give (``public_rank`` needs a separate public leaderboard)."""
    from dojoflow.errors import UsageError

    if mode == "public_rank" and not spec.leaderboard.public_file:
        raise UsageError(f"reward mode 'public_rank' needs a task with a public leaderboard (leaderboard.public_file, "
                         f"e.g. an MLE-Dojo import); '{spec.id}' has {spec.leaderboard.boards} only: use human_rank")


def milestone_reward(feedback: GradeResult) -> float:
    """The highest milestone reached (see the module docstring)."""
    placement = feedback.placement
    if not feedback.valid or placement is None:
        return MILESTONES["format_ok"] if feedback.format_ok else 0.0
    if placement.medal:
        return MILESTONES[placement.medal]
    return MILESTONES["above_median"] if placement.above_median else MILESTONES["valid"]


def sandmle_release_reward(feedback: GradeResult | None, format_rate: float) -> float:
    """SandMLE's released reward: 0.2 valid + the best tier reached (0.7 / 0.6 / 0.5 / 0.1) + 0.1 x format rate.

    The release's median tier is "at least as good as the median" (``<=`` / ``>=``), unlike dojoflow's
    above-median, which is strict.
    """
    reward = SANDMLE_RELEASE["format"] * max(0.0, min(1.0, format_rate))
    if feedback is None or not feedback.valid or feedback.score is None or feedback.placement is None:
        return reward
    placement = feedback.placement
    reward += SANDMLE_RELEASE["valid"]
    if placement.medal:
        return reward + SANDMLE_RELEASE[placement.medal]
    median = placement.thresholds["median"]
    at_least_median = feedback.score >= median if placement.higher_is_better else feedback.score <= median
    return reward + (SANDMLE_RELEASE["median"] if at_least_median else 0.0)


def sandmle_paper_reward(feedback: GradeResult | None, executed: bool) -> float:
    """SandMLE's reward as the paper states it: the sum of the milestones reached (format, execute, median,
    bronze, silver, gold)."""
    reward = SANDMLE_PAPER["format"]  # this step's action parsed (invalid actions are not rewarded at all)
    if not executed:
        return reward
    reward += SANDMLE_PAPER["execute"]
    if feedback is None or not feedback.valid or feedback.placement is None:
        return reward
    placement = feedback.placement
    reward += SANDMLE_PAPER["median"] if placement.above_median or placement.medal else 0.0
    reached = {"gold": 3, "silver": 2, "bronze": 1}.get(placement.medal or "", 0)
    for tier, level in (("bronze", 1), ("silver", 2), ("gold", 3)):
        if reached >= level:
            reward += SANDMLE_PAPER[tier]
    return round(reward, 10)
