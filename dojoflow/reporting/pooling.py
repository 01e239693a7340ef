"""Which results may be aggregated together, and the report sections that follow from it.

- **Feedback protocols are never pooled.** A score earned with test-derived feedback is not a score earned
  without it, so each protocol gets its own section, marked comparable with MLE-bench's leaderboard or not.
- **Description variants are never pooled** either: runs on the obfuscated description (the contamination
  probe, ``dojo/obfuscation.py``) get their own sections; ``reporting/contamination.py`` compares the two.
- **Within a section, one agent's row pools only results obtained the same way**: the same provenance key
  (software and commit, hardware, budgets, model and endpoint, grading mode, leaderboard provenance; see
  ``dojoflow/provenance.py``). Mixed keys are an error that names the fields that differ, unless the caller
  asks to pool (``dojoflow report --pool``); the section then says what it pooled across.
- An agent's results with different models are different rows (``react (gpt-4o)``, ``react (llama)``).
- Different agents side by side may differ (that is what is compared); the section lists the provenance
  fields in which its agents differ, so the comparison's conditions are on the page.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dojoflow.errors import UsageError
from dojoflow.provenance import differences

if TYPE_CHECKING:
    import pandas as pd

    from dojoflow.reporting.render import Report


def _blocks(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [json.loads(text or "{}") for text in frame["provenance"].drop_duplicates()]


def _common(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields (dotted names) every block agrees on, with their value."""
    differing = set(differences(blocks))
    common: dict[str, Any] = {}

    def walk(block: dict[str, Any], prefix: str = "") -> None:
        for key, value in block.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, f"{name}.")
            elif name not in differing:
                common[name] = value

    if blocks:
        walk(blocks[0])
    return common


def report_sections(results: pd.DataFrame, pool: bool = False) -> list[Report]:
    """One report per feedback protocol and description variant; raises UsageError where an agent's results
    were obtained differently (unless ``pool``)."""
    from dojoflow.reporting.render import Report
    from dojoflow.storage.results import completed, with_added_columns, with_model_label

    if results.empty:
        raise UsageError("the results table is empty: run some episodes first (dojoflow run / demo)")
    sections, problems = [], []
    results = with_added_columns(results.copy())
    for (protocol, variant), group in results.groupby(["feedback_protocol", "description_variant"], sort=True):
        pooled: dict[str, list[str]] = {}
        graded = with_model_label(completed(group))  # failed episodes are counted, not aggregated; models never pool
        for agent, rows in graded.groupby("agent"):
            if rows["provenance_key"].nunique() > 1:
                fields = differences(_blocks(rows)) or ["provenance unknown for rows recorded before it existed"]
                pooled[str(agent)] = fields
                problems.append(f"{agent} under {protocol}"
                                + (f" ({variant} description)" if variant != "original" else "")
                                + f": {', '.join(fields)}")
        report = Report.from_results(group)
        blocks = _blocks(graded)
        report.protocol = str(protocol)
        report.description = str(variant)
        report.comparable = bool(graded["leaderboard_comparable"].astype(bool).all())
        report.provenance = _common(blocks)
        report.differences = differences(blocks)
        report.pooled = pooled
        sections.append(report)
    if problems and not pool:
        raise UsageError("the results of one agent were obtained in different ways and are not pooled: "
                         + "; ".join(problems) + ". Report a subset (e.g. one sweep's results), or pass --pool to "
                         "pool them anyway (the report then says what it pooled across)")
    return sections
