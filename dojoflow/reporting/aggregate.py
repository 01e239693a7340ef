"""Aggregation of episode results.

**Rates per agent and task split.** For each seed, a rate is the mean over the split's tasks (valid
submission, any medal, gold, above median, HumanRank); the table gives the mean across seeds and the
standard error of that mean (``ddof=1``; undefined with one seed), as MLE-bench reports results.

**AUP** (MLGym): per task, each agent's performance is its mean score over seeds; the performance ratio is
``best / score`` for higher-is-better metrics and ``score / best`` for lower-is-better ones (>= 1, 1 for
the best agent). The profile ``rho(tau)`` is the fraction of tasks whose ``log10`` ratio is <= ``tau``;
AUP is its area for ``tau`` in ``[0, tau_max]``, where ``tau_max`` is the largest finite log-ratio seen
(at least 0.01). A task where an agent had no valid submission never counts for it. Where a task's scores
are not all positive, ratios use ``1 + |best - score| / (|best| + 1e-12)`` instead.

**Elo**: every pair of agents plays one game per (task, seed) both ran: the better score wins (a valid
submission beats an invalid one; equal scores or two invalid submissions draw). Ratings start at 1000,
K = 16, and are averaged over 50 seeded random orders of the games, so the result does not depend on the
order episodes finished in.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

RATES = {"valid": "valid", "any_medal": "any medal", "gold": "gold",
         "above_median": ">median", "human_rank": "HumanRank"}


def split_rows(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (episode, split): every episode is in split ``all`` plus its task's own splits."""
    frame = results.copy()
    frame["split"] = frame["task_splits"].fillna("").map(lambda s: ["all", *[x for x in str(s).split(",") if x]])
    return frame.explode("split")


def seed_rates(by_split: pd.DataFrame) -> pd.DataFrame:
    """Per agent, split and seed (from :func:`split_rows`' output): each rate averaged over tasks."""
    frame = by_split.copy()
    for column in RATES:
        frame[column] = frame[column].astype(float)
    return frame.groupby(["agent", "split", "seed"], as_index=False)[list(RATES)].mean()


def rate_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per agent and split: mean and SEM (ddof=1) across seeds of each rate, with counts."""
    import pandas as pd

    by_split = split_rows(results)
    episodes = by_split.groupby(["agent", "split"]).size()
    rows = []
    for (agent, split), group in seed_rates(by_split).groupby(["agent", "split"]):
        row = {"agent": agent, "split": split, "seeds": len(group), "episodes": int(episodes[(agent, split)])}
        for column in RATES:
            values = group[column].to_numpy()
            row[f"{column}_mean"] = float(values.mean())
            row[f"{column}_sem"] = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _task_performance(results: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """Task -> agent -> mean valid score over seeds (None if never valid)."""
    perf: dict[str, dict[str, float | None]] = {}
    for (task, agent), group in results.groupby(["task", "agent"]):
        valid = group[group["valid"].astype(bool)]["score"].astype(float)
        perf.setdefault(task, {})[agent] = float(valid.mean()) if len(valid) else None
    return perf


def performance_ratios(results: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Agent -> task -> performance ratio (>= 1; inf where the agent had no valid submission)."""
    directions = results.groupby("task")["higher_is_better"].first().to_dict()
    ratios: dict[str, dict[str, float]] = {agent: {} for agent in results["agent"].unique()}
    for task, by_agent in _task_performance(results).items():
        scores = {a: s for a, s in by_agent.items() if s is not None}
        higher = bool(directions[task])
        best = (max if higher else min)(scores.values()) if scores else None
        positive = all(s > 0 for s in scores.values())
        for agent in ratios:
            score = by_agent.get(agent)
            if score is None or best is None:
                ratios[agent][task] = math.inf
            elif positive:
                ratios[agent][task] = best / score if higher else score / best
            else:
                ratios[agent][task] = 1.0 + abs(best - score) / (abs(best) + 1e-12)
    return ratios


def performance_profile(results: pd.DataFrame, points: int = 200) -> tuple[list[float], dict[str, list[float]]]:
    """(tau grid, agent -> rho(tau)) on log10 ratios."""
    ratios = performance_ratios(results)
    logs = {a: [math.log10(r) if math.isfinite(r) else math.inf for r in by_task.values()]
            for a, by_task in ratios.items()}
    finite = [x for values in logs.values() for x in values if math.isfinite(x)]
    tau_max = max(max(finite, default=0.0), 0.01)
    taus = [tau_max * i / (points - 1) for i in range(points)]
    profiles = {a: [sum(x <= tau for x in values) / len(values) if values else 0.0 for tau in taus]
                for a, values in logs.items()}
    return taus, profiles


def aup(results: pd.DataFrame) -> dict[str, float]:
    """Area under each agent's performance profile (trapezoids on the tau grid)."""
    taus, profiles = performance_profile(results)
    return {agent: sum((taus[i + 1] - taus[i]) * (rho[i] + rho[i + 1]) / 2 for i in range(len(taus) - 1))
            for agent, rho in profiles.items()}


def head_to_head_games(results: pd.DataFrame) -> list[tuple[str, str, float]]:
    """(agent a, agent b, a's result: 1 win, 0.5 draw, 0 loss) per pair and (task, seed)."""
    games = []
    for _, group in results.groupby(["task", "seed"]):
        rows = group.drop_duplicates("agent").to_dict("records")
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                games.append((a["agent"], b["agent"], _outcome(a, b)))
    return games


def _outcome(a: dict, b: dict) -> float:
    a_valid, b_valid = bool(a["valid"]), bool(b["valid"])
    if a_valid != b_valid:
        return 1.0 if a_valid else 0.0
    if not a_valid or a["score"] == b["score"]:
        return 0.5
    a_better = a["score"] > b["score"] if a["higher_is_better"] else a["score"] < b["score"]
    return 1.0 if a_better else 0.0


def elo(results: pd.DataFrame, k: float = 16.0, start: float = 1000.0, orders: int = 50,
        seed: int = 0) -> dict[str, float]:
    """Elo ratings from head-to-head games, averaged over seeded random game orders."""
    games = head_to_head_games(results)
    agents = sorted(results["agent"].unique())
    totals = dict.fromkeys(agents, 0.0)
    rng = random.Random(seed)
    for _ in range(orders):
        order = games[:]
        rng.shuffle(order)
        ratings = dict.fromkeys(agents, start)
        for a, b, result in order:
            expected = 1.0 / (1.0 + 10 ** ((ratings[b] - ratings[a]) / 400))
            ratings[a] += k * (result - expected)
            ratings[b] -= k * (result - expected)
        for agent in agents:
            totals[agent] += ratings[agent] / orders
    return totals
