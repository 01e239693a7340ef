"""``dojoflow grade`` and ``dojoflow medals``: score a submission file; place a score on a leaderboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from dojoflow.cli.common import console, fmt
from dojoflow.config import get_settings


def grade(submission: Path = typer.Argument(..., help="Submission CSV file."),
          task_id: str = typer.Option(..., "--task", help="Task id."),
          part: str = typer.Option("private", "--part", "--split",
                                   help="Which hidden test rows to score: public, private or all (--split is the "
                                        "old spelling)."),
          mode: Optional[str] = typer.Option(None, "--mode", help="Grading mode: mlebench (MLE-bench's own rules, "
                                             "the default of imported MLE-bench tasks), mlebench-strict "
                                             "(dojoflow's validation first) or dojoflow (built-in tasks)."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Validate and score a submission file against a task's hidden answers."""
    from dojoflow.tasks_catalog.grading import grade_submission
    from dojoflow.tasks_catalog.preparation import prepare_task
    from dojoflow.tasks_catalog.registry import get_task

    spec = get_task(task_id)
    result = grade_submission(spec, prepare_task(spec, get_settings().data_dir), submission, part=part,
                              mode=mode)
    if as_json:
        print(json.dumps(result.to_dict(), indent=1))
    elif not result.valid:
        console.print("[red]invalid submission[/red]")
        for error in result.errors:
            console.print(f"  - {error}")
    else:
        p = result.placement
        assert p is not None and result.score is not None  # a valid grade is always placed
        grader_name = spec.tags.get("mlebench_grader") or "score"
        metric = spec.metric_name if spec.grader is None else f"{grader_name} (the competition's own grader)"
        console.print(f"{metric} on the {part} part = [bold]{result.score:.6g}[/bold] ({spec.direction}); "
                      f"medal: {p.medal or 'none'}, above median: {fmt(p.above_median)}, HumanRank "
                      f"{p.human_rank:.3f}, position {p.position}/{p.num_teams} on the {p.provenance} leaderboard")
        if result.score_all_rows is not None:
            console.print(f"on all answer rows (as MLE-bench grades): {result.score_all_rows:.6g}")
    if not as_json:
        console.print(f"grading mode: {result.grading_mode}")
        for warning in result.warnings:
            console.print(f"  [yellow]warning:[/yellow] {warning}")
    raise typer.Exit(0 if result.valid else 1)


def medals(leaderboard: Path = typer.Option(..., "--leaderboard", help="Leaderboard CSV (MLE-bench or score column)."),
           score: float = typer.Option(..., "--score", help="The score to place."),
           lower_is_better: Optional[bool] = typer.Option(
               None, "--lower-is-better/--higher-is-better", help="Direction; inferred from the file if omitted."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Medal thresholds of a leaderboard and where a score would land."""
    from dojoflow.tasks_catalog.leaderboard import load_leaderboard

    board = load_leaderboard(leaderboard, None if lower_is_better is None else not lower_is_better)
    placement = board.place(score)
    t = placement.thresholds
    data = {"gold_threshold": t["gold"], "silver_threshold": t["silver"], "bronze_threshold": t["bronze"],
            "median_threshold": t["median"], "medal": placement.medal, "above_median": placement.above_median,
            "human_rank": placement.human_rank, "position": placement.position, "num_teams": board.num_teams,
            "lower_is_better": not board.higher_is_better, "direction_inferred": board.direction_inferred}
    if as_json:
        print(json.dumps(data, indent=1))
        return
    direction = "lower is better" if data["lower_is_better"] else "higher is better"
    console.print(f"{board.num_teams} teams, {direction}" + (" (inferred: first row better than last)"
                                                             if board.direction_inferred else ""))
    for key in ("gold", "silver", "bronze", "median"):
        console.print(f"  {key:7s} threshold: {fmt(t[key], 8)}")
    console.print(f"score {score:g}: medal [bold]{placement.medal or 'none'}[/bold], above median "
                  f"{fmt(placement.above_median)}, HumanRank {placement.human_rank:.4f}, position "
                  f"{placement.position}/{board.num_teams}")


COMMANDS = {"grade": grade, "medals": medals}
