"""Feedback protocols: what an agent learns about its submissions during an episode.

MLE-bench's leaderboard accepts only runs whose harness exposes **no signal derived from the test set**.
dojoflow's historical feedback (the score on the public part of the hidden test rows, as on Kaggle's
public leaderboard) is honest and useful for RL, but it is test-derived, so a run under it is not
comparable with MLE-bench's board. Every episode therefore runs under one named protocol, recorded in its
result, trajectory, MLflow run and results row, and reports never pool protocols:

- ``public-test``: the score on the public part of the test rows, placed on the public leaderboard
  (Kaggle-like; test-derived);
- ``validation``: the score on a held-out part of the *training* rows. Those rows leave ``train.csv`` and
  join ``test.csv`` unlabelled, shuffled among the test rows, so the agent predicts them without knowing
  which they are; their labels come from the training data, so nothing the agent hears touches the test
  answers (:mod:`dojoflow.tasks_catalog.validation_split`). Not test-derived;
- ``format-only``: MLE-bench's validation server: the submission's format is checked (columns, ids, values),
  never scored;
- ``none``: the agent sees its code's output and whether it wrote a submission, nothing else.

Under every protocol the final grade is the private part of the test rows, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from dojoflow.errors import UnknownNameError


@dataclass(frozen=True)
class FeedbackProtocol:
    """One protocol: its name, whether its signal is derived from the test set, and how to describe it."""

    name: str
    test_derived: bool
    scored: bool  # the agent receives a score (and a reward other than format milestones)
    description: str

    @property
    def leaderboard_comparable(self) -> bool:
        """Runs under it may be compared with MLE-bench's board (no test-derived signal)."""
        return not self.test_derived


PROTOCOLS: dict[str, FeedbackProtocol] = {p.name: p for p in [
    FeedbackProtocol("public-test", test_derived=True, scored=True,
                     description="scored on the public part of the test rows (Kaggle-like, test-derived)"),
    FeedbackProtocol("validation", test_derived=False, scored=True,
                     description="scored on held-out training rows hidden among the test inputs"),
    FeedbackProtocol("format-only", test_derived=False, scored=False,
                     description="format check only, as MLE-bench's validation server"),
    FeedbackProtocol("none", test_derived=False, scored=False, description="no feedback on submissions"),
]}
DEFAULT_FEEDBACK = "public-test"


def feedback_protocol(name: str) -> FeedbackProtocol:
    """The protocol named ``name``, or an error listing the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UnknownNameError(f"unknown feedback protocol '{name}'; choose one of {', '.join(PROTOCOLS)}") from None
