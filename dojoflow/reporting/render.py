"""Rendering a report: a rich terminal table, Markdown, JSON-ready dicts and a PNG plot."""

from __future__ import annotations

import math
from dataclasses import dataclass
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

    failed: int = 0  # episodes the harness could not finish (not aggregated; counted)

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
        return cls(rates, aup(graded), elo(graded), len(graded), failed=len(results) - len(graded))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: rates, AUP and Elo."""
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in self.rates.to_dict("records")]
        return {"episodes": self.episodes, "rates": rows, "aup": self.aup, "elo": self.elo}


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
    """A Markdown table (mean ± SEM across seeds; AUP and Elo across all tasks)."""
    header, body = _rows(report)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    lines.append(f"\n{report.episodes} episodes. Rates: mean ± SEM across seeds (ddof=1). AUP: area under the "
                 "performance profile (MLGym). Elo: head-to-head per task and seed.")
    return "\n".join(lines)


def to_rich_table(report: Report):
    """The report as a rich table for the terminal."""
    from rich.table import Table

    header, body = _rows(report)
    table = Table(title=f"dojoflow report ({report.episodes} episodes; mean ± SEM across seeds)")
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
