"""Results table and report: aggregation checked against hand computations."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dojoflow.errors import UsageError
from dojoflow.provenance import provenance_key
from dojoflow.reporting.aggregate import aup, elo, head_to_head_games, performance_ratios, rate_table
from dojoflow.reporting.pooling import report_sections
from dojoflow.reporting.render import Report, plot, to_markdown
from dojoflow.storage.results import COLUMNS, load_results, write_result

PROVENANCE = {"software": {"dojoflow": "0.1.0", "commit": "abc"}, "hardware": {"cores": 2}, "model": "",
              "budgets": {"max_steps": 3}, "feedback_protocol": "public-test", "grading_mode": "private-split",
              "leaderboard_provenance": "reference"}


def _row(agent, task, seed, valid, score, higher=True, medal=None, above=False, hr=0.5, splits="lite",
         protocol="public-test", provenance=None):
    block = {**(provenance or PROVENANCE), "feedback_protocol": protocol}
    return {"episode_id": f"{agent}-{task}-{seed}-{protocol}", "agent": agent, "task": task, "task_splits": splits,
            "seed": seed, "valid": valid, "score": score if valid else None, "higher_is_better": higher,
            "medal": medal, "gold": medal == "gold", "any_medal": medal is not None, "above_median": above,
            "human_rank": hr, "steps": 3, "wall_time_s": 1.0, "tokens": 0, "cost_usd": 0.0,
            "integrity_passed": True, "leaderboard_provenance": "reference", "finished_at": "2026-01-01T00:00:00",
            "feedback_protocol": protocol, "leaderboard_comparable": protocol != "public-test",
            "model": block["model"], "provenance": json.dumps(block, sort_keys=True),
            "provenance_key": provenance_key(block)}


@pytest.fixture
def results() -> pd.DataFrame:
    rows = []
    for seed in (0, 1, 2):
        # task t1 (higher is better): A beats B; task t2 (lower is better, not in lite): B beats A
        rows.append(_row("A", "t1", seed, True, 0.9, medal="gold" if seed == 0 else None, above=True, hr=0.8))
        rows.append(_row("B", "t1", seed, True, 0.6, hr=0.3))
        rows.append(_row("A", "t2", seed, seed != 2, 20.0, higher=False, hr=0.2 if seed != 2 else 0.0, splits=""))
        rows.append(_row("B", "t2", seed, True, 10.0, higher=False, hr=0.6, splits=""))
    return pd.DataFrame(rows)


def test_rates_are_mean_and_sem_across_seeds(results):
    table = rate_table(results).set_index(["agent", "split"])
    a_all = table.loc[("A", "all")]
    # per seed, A's valid rate over tasks t1, t2: 1, 1, 0.5 -> mean 5/6, sem = std(ddof=1)/sqrt(3)
    per_seed = np.array([1.0, 1.0, 0.5])
    assert a_all["valid_mean"] == pytest.approx(per_seed.mean())
    assert a_all["valid_sem"] == pytest.approx(per_seed.std(ddof=1) / math.sqrt(3))
    assert a_all["gold_mean"] == pytest.approx(np.mean([0.5, 0.0, 0.0]))
    assert a_all["human_rank_mean"] == pytest.approx(np.mean([0.5, 0.5, 0.4]))
    assert table.loc[("A", "lite")]["valid_mean"] == 1.0 and table.loc[("A", "lite")]["valid_sem"] == 0.0
    assert a_all["episodes"] == 6 and a_all["seeds"] == 3


def test_single_seed_has_no_sem(results):
    table = rate_table(results[results["seed"] == 0])
    assert table["valid_sem"].isna().all()


def test_performance_ratios_follow_direction(results):
    ratios = performance_ratios(results)
    assert ratios["A"]["t1"] == 1.0 and ratios["B"]["t1"] == pytest.approx(0.9 / 0.6)
    assert ratios["B"]["t2"] == 1.0 and ratios["A"]["t2"] == pytest.approx(20.0 / 10.0)


def test_aup_of_two_agents_each_best_on_one_task(results):
    # both agents: one task at log-ratio 0 and one at log10(1.5) (B) or log10(2) (A); tau_max = log10(2)
    areas = aup(results)
    tau_max = math.log10(2.0)
    assert areas["A"] == pytest.approx(0.5 * tau_max, abs=tau_max / 100)
    assert areas["B"] == pytest.approx(0.5 * math.log10(1.5) + 1.0 * (tau_max - math.log10(1.5)), abs=tau_max / 100)
    assert areas["B"] > areas["A"]


def test_elo_rewards_head_to_head_wins():
    rows = [_row("A", f"t{i}", 0, True, 0.9) for i in range(5)] + [_row("B", f"t{i}", 0, True, 0.1) for i in range(5)]
    ratings = elo(pd.DataFrame(rows))
    assert ratings["A"] > 1000 > ratings["B"]
    assert ratings["A"] + ratings["B"] == pytest.approx(2000)


def test_invalid_loses_and_two_invalid_draw():
    rows = [_row("A", "t", 0, True, 0.1), _row("B", "t", 0, False, None), _row("C", "t", 0, False, None)]
    games = {(a, b): r for a, b, r in head_to_head_games(pd.DataFrame(rows))}
    assert games[("A", "B")] == 1.0 and games[("B", "C")] == 0.5


def test_results_rows_are_written_once_per_episode(tmp_path):
    row = _row("A", "t1", 0, True, 0.5)
    write_result(tmp_path, row)
    write_result(tmp_path, {**row, "score": 0.7})  # re-recording replaces the row
    frame = load_results(tmp_path)
    assert len(frame) == 1 and frame.loc[0, "score"] == 0.7
    assert list(frame.columns) == list(COLUMNS)
    with pytest.raises(ValueError, match="lacks columns"):
        write_result(tmp_path, {"episode_id": "x"})


def test_markdown_json_and_png(results, tmp_path):
    report = Report.from_results(results)
    markdown = to_markdown(report)
    assert "| A | all | 3 |" in markdown and "±" in markdown
    json.dumps(report.to_dict())
    png = plot(report, results, tmp_path / "report.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_command_on_a_results_folder(results, tmp_path):
    for row in results.to_dict("records"):
        write_result(tmp_path / "results", row)
    proc = subprocess.run([str(Path(sys.executable).parent / "dojoflow"), "report", "--results",
                           str(tmp_path / "results"), "--json"], capture_output=True, text=True, check=True)
    data = json.loads(proc.stdout)
    assert data["episodes"] == 12 and set(data["sections"][0]["elo"]) == {"A", "B"}
    assert data["sections"][0]["feedback_protocol"] == "public-test"
    assert data["sections"][0]["provenance"]["software.commit"] == "abc"


def test_protocols_are_never_pooled(results):
    other = pd.DataFrame([_row("A", "t1", s, True, 0.5, protocol="validation") for s in (0, 1, 2)])
    sections = report_sections(pd.concat([results, other], ignore_index=True), pool=True)
    assert [(s.protocol, s.episodes, s.comparable) for s in sections] == [("public-test", 12, False),
                                                                          ("validation", 3, True)]
    markdown = to_markdown(sections[1])
    assert "feedback protocol validation: 3 episodes, comparable with MLE-bench" in markdown
    assert "NOT comparable" in to_markdown(sections[0]) and "software.commit: abc" in to_markdown(sections[0])


def test_an_agent_s_results_obtained_differently_are_not_pooled_unless_asked(results):
    changed = {**PROVENANCE, "budgets": {"max_steps": 20}, "software": {"dojoflow": "0.1.0", "commit": "def"}}
    later = pd.DataFrame([_row("A", "t3", s, True, 0.5, provenance=changed) for s in (0, 1, 2)])
    mixed = pd.concat([results, later], ignore_index=True)
    with pytest.raises(UsageError, match=r"A under public-test: budgets.max_steps, software.commit.*--pool"):
        report_sections(mixed)
    (section,) = report_sections(mixed, pool=True)
    assert section.pooled == {"A": ["budgets.max_steps", "software.commit"]}
    assert "POOLED across different budgets.max_steps, software.commit for A" in to_markdown(section)


def test_different_models_are_different_rows(results):
    with_model = {**PROVENANCE, "model": "tiny-llm"}
    other = pd.DataFrame([_row("A", "t1", s, True, 0.5, provenance=with_model) for s in (0, 1, 2)])
    (section,) = report_sections(pd.concat([results, other], ignore_index=True))
    assert set(section.rates["agent"]) == {"A", "B", "A (tiny-llm)"}


def test_rows_written_before_protocols_existed_still_load(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    legacy = {k: v for k, v in _row("A", "t1", 0, True, 0.5).items()
              if k not in ("feedback_protocol", "leaderboard_comparable", "model", "provenance", "provenance_key")}
    pq.write_table(pa.Table.from_pylist([{"sweep_id": "", "episode_key": "", **legacy}]), tmp_path / "old.parquet")
    frame = load_results(tmp_path)
    assert frame.loc[0, "feedback_protocol"] == "public-test" and frame.loc[0, "provenance_key"] == ""
    (section,) = report_sections(frame)
    assert section.protocol == "public-test" and not section.comparable


def test_empty_results_is_a_clean_error(tmp_path):
    proc = subprocess.run([str(Path(sys.executable).parent / "dojoflow"), "report", "--results", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "results table is empty" in proc.stderr


def test_rows_written_before_the_new_columns_still_load(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    old = {k: v for k, v in _row("A", "t1", 0, True, 0.5).items()}
    old.update({"sweep_id": "", "episode_key": ""})
    pq.write_table(pa.Table.from_pylist([old]), tmp_path / "old-episode.parquet")  # no model/status columns
    write_result(tmp_path, {**_row("A", "t1", 1, True, 0.6), "episode_id": "new", "model": "m1"})
    frame = load_results(tmp_path)
    assert len(frame) == 2 and set(frame["status"]) == {"completed"}
    assert sorted(frame["model"]) == ["", "m1"] and set(frame["end_reason"]) == {""}


def test_the_report_keeps_models_apart_and_leaves_failed_episodes_out(results):
    frame = results.copy()
    frame["model"] = ["m1" if seed == 0 else "m2" for seed in frame["seed"]]
    failed = {**_row("A", "t1", 5, False, None), "model": "m1", "status": "failed", "end_reason": "OSError: x",
              "error_class": "infrastructure"}
    frame = pd.concat([frame, pd.DataFrame([failed])], ignore_index=True)
    report = Report.from_results(frame)
    agents = set(report.rates["agent"])
    assert agents == {"A (m1)", "A (m2)", "B (m1)", "B (m2)"}  # never pooled across models
    assert set(report.rates["model"]) == {"m1", "m2"}
    assert report.failed == 1 and report.episodes == len(results)
