"""Leaderboards, Kaggle medal thresholds and HumanRank.

Medal rules by number of teams N (kaggle.com/progression, as applied by MLE-bench); a threshold is the
score at that 1-based position of the leaderboard sorted best first:

- N < 100:        gold top 10%, silver top 20%, bronze top 40% (positions floored, at least 1)
- 100 <= N < 250: gold position 10, silver top 20%, bronze top 40%
- 250 <= N < 1000: gold position 10 + 0.2% of N, silver position 50, bronze position 100
- N >= 1000:      gold position 10 + 0.2% of N, silver top 5%, bronze top 10%

A medal needs a score at least as good as its threshold; "above median" needs a score strictly better
than the leaderboard's median. HumanRank (MLE-Dojo): with p the first 1-based position whose score the
agent ties or beats (N + 1 if none), HumanRank = (N - p + 1) / N.

Two CSV formats load: MLE-bench's (``scoreNullable, teamId, hasTeamName, submissionDate, score,
hasScore``) and a plain one with a ``score`` column. A dojoflow reference leaderboard may also carry a
``public_score`` column: the same entries scored on the public part of the test rows, used to place
feedback scores during an episode.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from dojoflow.errors import LeaderboardError

MEDALS = ("gold", "silver", "bronze")


@dataclass(frozen=True)
class Leaderboard:
    """Scores sorted best first, with a direction and a provenance ("human" or "reference")."""

    scores: tuple[float, ...]
    higher_is_better: bool
    provenance: str = "human"
    direction_inferred: bool = False
    source: str = ""

    @property
    def num_teams(self) -> int:
        """The number of entries (teams) on the board."""
        return len(self.scores)

    def medal_positions(self) -> dict[str, int]:
        """1-based positions of the gold, silver and bronze thresholds for this many teams."""
        n = self.num_teams
        if n < 100:
            gold, silver, bronze = (max(1, int(n * f)) for f in (0.1, 0.2, 0.4))
        elif n < 250:
            gold, silver, bronze = 10, int(n * 0.2), int(n * 0.4)
        elif n < 1000:
            gold, silver, bronze = 10 + int(n * 0.002), 50, 100
        else:
            gold, silver, bronze = 10 + int(n * 0.002), int(n * 0.05), int(n * 0.1)
        return {"gold": gold, "silver": silver, "bronze": bronze}

    def thresholds(self) -> dict[str, float]:
        """Score thresholds for each medal and the median."""
        out = {medal: self.scores[pos - 1] for medal, pos in self.medal_positions().items()}
        ordered = sorted(self.scores)
        mid = len(ordered) // 2
        out["median"] = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        return out

    def at_least_as_good(self, score: float, reference: float) -> bool:
        """``score`` ties or beats ``reference`` in the board's direction."""
        return score >= reference if self.higher_is_better else score <= reference

    def strictly_better(self, score: float, reference: float) -> bool:
        """``score`` beats ``reference`` in the board's direction."""
        return score > reference if self.higher_is_better else score < reference

    def place(self, score: float | None) -> Placement:
        """Where ``score`` lands: medal, above-median, HumanRank and position. ``None`` (invalid) wins nothing."""
        n = self.num_teams
        limits = self.thresholds()
        if score is None or not math.isfinite(score):
            return Placement(None, False, 0.0, n + 1, n, limits, self.higher_is_better, self.provenance)
        medal = next((m for m in MEDALS if self.at_least_as_good(score, limits[m])), None)
        position = 1 + sum(1 for s in self.scores if self.strictly_better(s, score))
        return Placement(
            medal=medal,
            above_median=self.strictly_better(score, limits["median"]),
            human_rank=(n - position + 1) / n,
            position=position,
            num_teams=n,
            thresholds=limits,
            higher_is_better=self.higher_is_better,
            provenance=self.provenance,
        )


@dataclass(frozen=True)
class Placement:
    """The result of placing one score on a leaderboard."""

    medal: str | None
    above_median: bool
    human_rank: float
    position: int
    num_teams: int
    thresholds: dict[str, float]
    higher_is_better: bool
    provenance: str

    def to_dict(self) -> dict:
        """JSON-ready."""
        return asdict(self)


def load_leaderboard(path: Path, higher_is_better: bool | None = None, provenance: str = "human",
                     column: str = "score", fallback_column: str | None = None) -> Leaderboard:
    """Load a leaderboard CSV. With no direction given, infer it as MLE-bench does (first row better than last).

    ``column`` picks the score column (``public_score`` for a reference leaderboard's public part);
    ``fallback_column`` is used when the file has no such column.
    """
    path = Path(path)
    if not path.is_file():
        raise LeaderboardError(f"leaderboard file not found: {path}")
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    if rows and column not in rows[0] and fallback_column is not None and fallback_column in rows[0]:
        column = fallback_column
    if not rows or column not in rows[0]:
        raise LeaderboardError(f"{path}: needs a '{column}' column and at least one row")
    scores = []
    for i, row in enumerate(rows, start=2):
        if str(row.get("hasScore", "True")).strip().lower() == "false" or row[column] in ("", None):
            continue
        try:
            value = float(row[column])
        except ValueError:
            raise LeaderboardError(f"{path}: line {i}: '{column}' is not a number: {row[column]!r}") from None
        if math.isfinite(value):  # NaN/inf entries have no rank, like hasScore=False rows
            scores.append(value)
    if not scores:
        raise LeaderboardError(f"{path}: no scored entries")
    inferred = higher_is_better is None
    higher = (scores[0] > scores[-1] if scores[0] != scores[-1] else True) if higher_is_better is None \
        else higher_is_better
    ordered = tuple(sorted(scores, reverse=higher))
    return Leaderboard(ordered, higher, provenance, inferred, str(path))
