"""Rendering a report: a rich terminal table, Markdown, JSON-ready dicts and a PNG plot."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dojoflow.errors import UsageError
from dojoflow.reporting.aggregate import RATES, aup, elo, performance_profile, rate_table

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Report:
    """Everything a report shows, computed once."""

    rates: pd.DataFrame
    aup: dict[str, float]
    elo: dict[str, float]
    episodes: int
    protocol: str = ""  # the feedback protocol of every result in it (see reporting/pooling.py)
    comparable: bool = False  # no test-derived feedback: comparable with MLE-bench's leaderboard
    provenance: dict[str, Any] = field(default_factory=dict)  # the conditions all its results share
    differences: list[str] = field(default_factory=list)  # provenance fields in which its results differ
    pooled: dict[str, list[str]] = field(default_factory=dict)  # agent -> fields pooled across (--pool)
    failed: int = 0  # episodes the harness could not finish (not aggregated; counted)
    public_feedback: dict[str, dict[str, float]] = field(default_factory=dict)  # agent -> feedback on public boards
    description: str = "original"  # the description variant of every result in it (dojo/obfuscation.py)

    @property
    def label(self) -> str:
        """The section's short name (file names): its protocol, and its description variant when obfuscated."""
        return self.protocol + ("" if self.description == "original" else f"-{self.description}")

    @classmethod
    def from_results(cls, results: pd.DataFrame) -> Report:
        """The report of a results table (one row per episode).

        Only completed episodes are aggregated (failed ones have no grade; :attr:`failed` counts them). An
        agent run with several models is one row per model: its name in the report is ``agent (model)``,
        and the rates table has a ``model`` column."""
        from dojoflow.storage.results import completed, with_model_label

        if results.empty:
            raise UsageError("the results table is empty: run some episodes first (dojoflow run / demo)")
        graded = with_model_label(completed(results))
        if graded.empty:
            raise UsageError(f"none of the {len(results)} episodes completed (all failed): nothing to aggregate; "
                             "their end reasons are in the results table's `end_reason` column")
        rates = rate_table(graded)
        models = dict(zip(graded["agent"], graded["model"]))
        rates.insert(1, "model", rates["agent"].map(models).fillna(""))
        return cls(rates, aup(graded), elo(graded), len(graded), failed=len(results) - len(graded),
                   public_feedback=public_feedback(graded))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: rates, AUP and Elo."""
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in self.rates.to_dict("records")]
        return {"episodes": self.episodes, "feedback_protocol": self.protocol, "description_variant": self.description,
                "leaderboard_comparable": self.comparable, "provenance": self.provenance,
                "differences": self.differences, "pooled": self.pooled, "failed": self.failed, "rates": rows,
                "public_feedback": self.public_feedback,
                "aup": self.aup, "elo": self.elo}

    @property
    def heading(self) -> str:
        """One line: the protocol and whether the section is comparable with MLE-bench's leaderboard."""
        if not self.protocol:
            return f"{self.episodes} episodes"
        comparable = ("comparable with MLE-bench's leaderboard (no test-derived feedback)" if self.comparable
                      else "NOT comparable with MLE-bench's leaderboard (test-derived feedback)")
        variant = "" if self.description == "original" else f", {self.description} description"
        return f"feedback protocol {self.protocol}{variant}: {self.episodes} episodes, {comparable}"

    def conditions(self) -> list[str]:
        """The provenance lines printed under the table."""
        shown = ("software.dojoflow", "software.commit", "hardware.cpu", "hardware.cores", "hardware.memory_gb",
                 "hardware.gpus", "budgets.max_steps", "budgets.wall_time_s", "budgets.token_budget",
                 "budgets.cost_budget_usd", "model", "endpoint", "grading_mode", "leaderboard_provenance")
        lines = [f"{name}: {self.provenance[name]}" for name in shown
                 if name in self.provenance and self.provenance[name] not in ("", None, [])]
        if self.differences:
            lines.append(f"differs between agents: {', '.join(self.differences)}")
        lines += [f"POOLED across different {', '.join(fields)} for {agent} (--pool)"
                  for agent, fields in self.pooled.items()]
        return lines


def public_feedback(results: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per agent, over episodes whose feedback was placed on a separate public board (``feedback_board`` =
    ``public``: MLE-Dojo imports): the mean best feedback HumanRank and the share reaching a medal band."""
    if "feedback_board" not in results:
        return {}
    public = results[(results["feedback_board"] == "public") & results["best_feedback_human_rank"].notna()]
    return {str(agent): {"episodes": float(len(group)),
                         "best_feedback_human_rank": float(group["best_feedback_human_rank"].astype(float).mean()),
                         "feedback_medal": float(group["best_feedback_medal"].notna().mean())}
            for agent, group in public.groupby("agent")}


def _cell(mean: float, sem: float) -> str:
    return f"{mean:.3f}" + ("" if math.isnan(sem) else f" ± {sem:.3f}")


def _rows(report: Report) -> tuple[list[str], list[list[str]]]:
    header = ["agent", "split", "seeds", *RATES.values(), "AUP", "Elo"]
    body = []
    for r in report.rates.sort_values(["split", "agent"]).to_dict("records"):
        body.append([r["agent"], r["split"], str(r["seeds"]),
                     *(_cell(r[f"{c}_mean"], r[f"{c}_sem"]) for c in RATES),
                     f"{report.aup.get(r['agent'], math.nan):.4f}", f"{report.elo.get(r['agent'], math.nan):.0f}"])
    return header, body


def to_markdown(report: Report) -> str:
    """A Markdown table (mean ± SEM across seeds; AUP and Elo across all tasks), under its section heading
    and above its conditions when it is a protocol's section."""
    header, body = _rows(report)
    lines = [f"### {report.heading}\n"] if report.protocol else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    lines.append(f"\n{report.episodes} episodes. Rates: mean ± SEM across seeds (ddof=1). AUP: area under the "
                 "performance profile (MLGym). Elo: head-to-head per task and seed.")
    for agent, r in report.public_feedback.items():
        lines.append(f"\n{agent}: on tasks with Kaggle's public board ({r['episodes']:.0f} episodes), best feedback "
                     f"HumanRank {r['best_feedback_human_rank']:.3f} and medal band rate {r['feedback_medal']:.3f} "
                     "on the public board, as on Kaggle's public leaderboard; the final grade above is on the private "
                     "board.")
    if report.protocol:
        lines += ["", *[f"- {line}" for line in report.conditions()]]
    return "\n".join(lines)


def sections_markdown(reports: list[Report]) -> str:
    """Every section of a report (one per feedback protocol), in Markdown."""
    return "\n\n".join(to_markdown(r) for r in reports)


def to_rich_table(report: Report):
    """The report as a rich table for the terminal."""
    from rich.table import Table

    header, body = _rows(report)
    title = report.heading if report.protocol else f"{report.episodes} episodes"
    table = Table(title=f"dojoflow report: {title} (mean ± SEM across seeds)",
                  caption="\n".join(report.conditions()) if report.protocol else None, caption_justify="left")
    for column in header:
        table.add_column(column, no_wrap=column in ("agent", "split"))
    for row in body:
        table.add_row(*row)
    return table


def plot(report: Report, results: pd.DataFrame, path: Path) -> Path:
    """PNG: HumanRank (mean ± SEM, split 'all') per agent, and each agent's performance profile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    overall = report.rates[report.rates["split"] == "all"].sort_values("agent")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    sem = overall["human_rank_sem"].fillna(0.0)
    left.bar(overall["agent"], overall["human_rank_mean"], yerr=sem, capsize=4, color="#4C72B0")
    left.set_ylim(0, 1)
    left.set_ylabel("HumanRank (mean ± SEM across seeds)")
    left.set_title("HumanRank, all tasks")
    taus, profiles = performance_profile(results)
    for agent, rho in sorted(profiles.items()):
        right.step(taus, rho, where="post", label=f"{agent} (AUP {report.aup[agent]:.3f})")
    right.set_xlabel("tau (log10 performance ratio)")
    right.set_ylabel("fraction of tasks")
    right.set_ylim(0, 1.05)
    right.set_title("Performance profile")
    right.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
