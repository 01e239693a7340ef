"""The contamination comparison: per agent and task, the scores of runs on the original description against
runs on the obfuscated one (``dojo/obfuscation.py``).

An agent that solves a task, rather than recalling it, should score about the same without the task's names;
a clear drop on the obfuscated description is a sign it knew the competition. The comparison pairs only
results of the same agent (and model), task and feedback protocol, so nothing else differs; ``drop`` is
signed by the metric's direction (positive: worse on the obfuscated description), and ``human_rank_drop``
is the same on the direction-free HumanRank scale. Reports never pool the two variants
(``reporting/pooling.py``); this table is where they meet.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from dojoflow.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

KEYS = ["agent", "task", "feedback_protocol"]


def contamination_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (agent, task, protocol) run under both variants: mean score and HumanRank of each, seeds,
    and the drops; raises UsageError when no such pair exists."""
    import pandas as pd

    from dojoflow.storage.results import completed, with_model_label

    graded = with_model_label(completed(results))
    if graded.empty:
        raise UsageError("the results table has no graded episodes: nothing to compare")
    means = graded.groupby([*KEYS, "description_variant"]).agg(
        score=("score", "mean"), human_rank=("human_rank", "mean"), seeds=("seed", "nunique"),
        higher_is_better=("higher_is_better", "first")).reset_index()
    original = means[means["description_variant"] == "original"].drop(columns="description_variant")
    obfuscated = means[means["description_variant"] == "obfuscated"].drop(columns=["description_variant",
                                                                                  "higher_is_better"])
    pairs = original.merge(obfuscated, on=KEYS, suffixes=("_original", "_obfuscated"))
    if pairs.empty:
        raise UsageError("no agent and task was run with both the original and the obfuscated description: run "
                         "the same sweep again with `description: obfuscated` (or dojoflow run --description "
                         "obfuscated)")
    sign = pairs["higher_is_better"].map(lambda higher: 1.0 if bool(higher) else -1.0)
    pairs["drop"] = sign * (pairs["score_original"] - pairs["score_obfuscated"])
    pairs["human_rank_drop"] = pairs["human_rank_original"] - pairs["human_rank_obfuscated"]
    return pd.DataFrame(pairs).sort_values(KEYS).reset_index(drop=True)


def _number(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def contamination_markdown(table: pd.DataFrame) -> str:
    """The comparison as a Markdown table under its heading."""
    header = ["agent", "task", "protocol", "score (original)", "score (obfuscated)", "drop", "HumanRank drop",
              "seeds (orig/obf)"]
    lines = ["### Contamination probe: original vs obfuscated description", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in table.to_dict("records"):
        lines.append("| " + " | ".join([str(r["agent"]), str(r["task"]), str(r["feedback_protocol"]),
                                        _number(r["score_original"]), _number(r["score_obfuscated"]),
                                        _number(r["drop"]), _number(r["human_rank_drop"]),
                                        f"{r['seeds_original']}/{r['seeds_obfuscated']}"]) + " |")
    lines += ["", "drop > 0: worse on the obfuscated description (a sign of contamination)."]
    return "\n".join(lines)


def contamination_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN as None)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in table.to_dict("records")]
