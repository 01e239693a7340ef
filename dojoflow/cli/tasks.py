"""``dojoflow tasks``: list, show and prepare tasks; rebuild reference leaderboards; import MLE-bench."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from dojoflow.cli import common
from dojoflow.cli.common import console, err_console, fmt
from dojoflow.config import get_settings
from dojoflow.errors import UsageError

app = typer.Typer(help="List, inspect, prepare and import tasks.", no_args_is_help=True)


@app.command("list")
def tasks_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table.")) -> None:
    """List the registered tasks (built-in, DOJOFLOW_TASK_PATH, imported); broken task folders are
    reported on stderr and left out."""
    from dojoflow.tasks_catalog.registry import load_all, task_sources

    specs, broken = load_all()
    for task_id, problem in broken.items():
        err_console.print(f"[yellow]skipped task '{task_id}':[/yellow] {problem}", highlight=False)
    rows: list[dict[str, Any]] = [{"id": s.id, "title": s.title, "task_type": s.task_type, "metric": s.metric_name,
             "direction": s.direction, "leaderboard": s.leaderboard.provenance, "gpu": s.resources.gpu,
             "tags": s.tags, "sources": task_sources(s), "boards": s.leaderboard.boards} for s in specs]
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    human = sum(r["leaderboard"] == "human" for r in rows)
    table = Table(title=f"{len(rows)} tasks ({human} with real human leaderboards)")
    table.add_column("id", no_wrap=True)
    for column in ("task type", "metric", "leaderboard", "boards", "source", "size"):
        table.add_column(column)
    for r in rows:
        better = "max" if r["direction"] == "higher-is-better" else "min"
        table.add_row(r["id"], r["task_type"], f"{r['metric']} ({better})", r["leaderboard"], r["boards"],
                      ",".join(r["sources"]), r["tags"].get("size", "-"))
    console.print(table)


@app.command("show")
def tasks_show(task_id: str = typer.Argument(..., help="Task id, e.g. breast-cancer.")) -> None:
    """Show a task's spec, description and leaderboard summary."""
    from dojoflow.tasks_catalog.grading import task_leaderboard
    from dojoflow.tasks_catalog.registry import get_task

    spec = get_task(task_id)
    board = task_leaderboard(spec)
    console.print(f"[bold]{spec.id}[/bold]: {spec.title}")
    console.print(f"type: {spec.task_type}   metric: {spec.metric_name} ({spec.direction})   "
                  f"submission: {spec.submission.id_column}, {', '.join(spec.submission.target_columns)}")
    limits = board.thresholds()
    console.print(f"leaderboard: {board.num_teams} entries, provenance [bold]{board.provenance}[/bold]"
                  + (" (not human: a population of honest scikit-learn solutions)" if board.provenance == "reference"
                     else "") + f"; gold {fmt(limits['gold'])}, silver {fmt(limits['silver'])}, "
                  f"bronze {fmt(limits['bronze'])}, median {fmt(limits['median'])}")
    if spec.leaderboard.public_file:
        public = task_leaderboard(spec, "public")
        plimits = public.thresholds()
        console.print(f"public leaderboard (feedback is placed here, as on Kaggle's): {public.num_teams} entries; "
                      f"gold {fmt(plimits['gold'])}, silver {fmt(plimits['silver'])}, bronze {fmt(plimits['bronze'])}, "
                      f"median {fmt(plimits['median'])}")
    from dojoflow.tasks_catalog.registry import task_sources

    console.print(f"sources: {', '.join(task_sources(spec))}   boards: {spec.leaderboard.boards}"
                  + (f"   ({spec.tags['boards']})" if spec.tags.get("boards", "public+private") != "public+private"
                     else ""))
    if spec.tags.get("direction_flag"):
        console.print(f"[yellow]direction:[/yellow] {spec.tags['direction_flag']}")
    exposure = spec.exposure
    if exposure.source == "package":
        console.print(f"source data: ships in installed packages ({', '.join(exposure.package_data)}); hidden "
                      "from isolated sandboxes (bwrap, warm, docker), readable under the local backend")
    elif exposure.source == "undeclared":
        console.print("[yellow]source data: undeclared[/yellow] (add an `exposure` section to task.yaml: if the "
                      "labelled source ships in an installed package, agent code could look the answers up)")
    else:
        console.print(f"source data: {exposure.source} (not reachable from a sandbox)")
    console.print(f"tags: {spec.tags}\nfolder: {spec.folder}\n")
    console.print(spec.description())


def prepare_with_progress(specs: Iterable, data_dir: Path, console: Console | None = None) -> list:
    """Prepare ``specs`` into ``data_dir`` with a rich progress bar (one row per task); returns PreparedData."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from dojoflow.tasks_catalog.preparation import prepare_task

    specs = list(specs)
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console or common.console, transient=False) as progress:
        overall = progress.add_task(f"{len(specs)} tasks", total=len(specs))
        for spec in specs:
            row = progress.add_task(spec.id, total=1)

            def report(done: float, total: float, message: str, row=row, spec=spec) -> None:
                progress.update(row, completed=done, total=total or 1,
                                description=f"{spec.id}: {message}" if message else spec.id)

            prepared = prepare_task(spec, data_dir, progress=report)
            state = "cache hit" if prepared.cache_hit else "prepared"
            progress.update(row, completed=1, total=1, description=f"{spec.id}: {state} ({prepared.key})")
            progress.advance(overall)
            results.append(prepared)
    return results


@app.command("prepare")
def tasks_prepare(task_id: Optional[str] = typer.Argument(None, help="Task id (omit with --all)."),
                  all_tasks: bool = typer.Option(False, "--all", help="Prepare every registered task.")) -> None:
    """Prepare a task's public/private data into the cache (a second call is a cache hit)."""
    from dojoflow.tasks_catalog.registry import get_task, list_tasks

    if not all_tasks and not task_id:
        raise UsageError("give a task id or --all")
    specs = list_tasks() if all_tasks else [get_task(task_id or "")]
    for spec, prepared in zip(specs, prepare_with_progress(specs, get_settings().data_dir, err_console)):
        state = "cache hit" if prepared.cache_hit else "prepared"
        console.print(f"{spec.id}: {state} -> {prepared.root}  (public: {prepared.public})")


@app.command("build-leaderboard")
def tasks_build_leaderboard(task_id: str = typer.Argument(..., help="Task id."),
                            output: Optional[Path] = typer.Option(None, help="Write here instead of the task folder.")
                            ) -> None:
    """Rebuild a task's reference leaderboard from its population of honest scikit-learn solutions."""
    from dojoflow.tasks_catalog.preparation import prepare_task
    from dojoflow.tasks_catalog.reference import write_reference_leaderboard
    from dojoflow.tasks_catalog.registry import get_task

    spec = get_task(task_id)
    prepared = prepare_task(spec, get_settings().data_dir)
    with console.status(f"training the reference population on {spec.id}..."):
        path = write_reference_leaderboard(spec, prepared, output)
    console.print(f"wrote reference leaderboard (provenance: reference) to {path}")


@app.command("import-mlebench")
def import_mlebench(
    path: Path = typer.Argument(..., help="MLE-bench competitions directory (or one competition folder)."),
    ids: Optional[str] = typer.Option(None, "--ids", help="Comma-separated competition ids to import."),
    split: Optional[str] = typer.Option(None, "--split", help="Import only an MLE-bench split: lite, medium, "
                                        "high, split75, dev."),
    raw_dir: Optional[Path] = typer.Option(None, "--raw-dir", envvar="DOJOFLOW_MLEBENCH_RAW",
                                           help="Raw Kaggle downloads: <raw-dir>/<competition-id>/."),
    leaderboards: Optional[Path] = typer.Option(None, "--leaderboards", help="Folder of <id>.csv leaderboards, "
                                                "used when a competition folder has none (or an LFS pointer)."),
    dest: Optional[Path] = typer.Option(None, "--dest", help="Where task folders go (default "
                                        "$DOJOFLOW_HOME/imported, searched automatically)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON report."),
) -> None:
    """Register MLE-bench competitions as dojoflow tasks (their prepare, grader and real leaderboard).

    Each competition imports or fails on its own; a summary table ends the output and the exit status is 1
    when any failed. What MLE-bench's graders need: pip install 'dojoflow[mlebench]'."""
    from dojoflow.tasks_catalog.mlebench import competition_ids, import_competitions_summary

    wanted = [i.strip() for i in ids.split(",") if i.strip()] if ids else None
    if split:
        in_split = competition_ids(split)
        wanted = [i for i in (wanted or in_split) if i in in_split]
    summary = import_competitions_summary(path, dest, wanted, raw_dir, leaderboards)
    done = [o.result for o in summary.imported]
    if as_json:
        typer.echo(json.dumps({"imported": [{"id": t.id, "folder": str(t.folder), "higher_is_better":
                                             t.higher_is_better, "leaderboard_rows": t.leaderboard_rows,
                                             "columns_verified": t.columns_verified} for t in done],
                               "failed": summary.failed, "exit_code": summary.exit_code}, indent=1))
    else:
        if summary.failed and any("leaderboard" in r and "LFS" in r for r in summary.failed.values()):
            console.print("[yellow]Leaderboards stored as Git LFS pointers: run `git lfs pull` in the checkout or "
                          "pass --leaderboards DIR (a folder of <id>.csv).[/yellow]")
        console.print(summary.table(f"MLE-bench import: {len(done)} imported, {len(summary.failed)} failed"))
    raise typer.Exit(summary.exit_code)


@app.command("import-mledojo")
def import_mledojo(
    path: Path = typer.Argument(..., help="MLE-Dojo checkout (or its mledojo/competitions folder)."),
    ids: Optional[str] = typer.Option(None, "--ids", help="Comma-separated competition ids to import."),
    split: Optional[str] = typer.Option(None, "--split", help="Only one of MLE-Dojo's lists: eval, lite, tabular, "
                                        "nlp, cv, train."),
    prepared: Optional[Path] = typer.Option(None, "--prepared", envvar="DOJOFLOW_MLEDOJO_PREPARED",
                                            help="Already-prepared data: DIR/<id>/public and DIR/<id>/private "
                                            "(MLE-Dojo's layout, with private/test_answer.csv)."),
    raw_dir: Optional[Path] = typer.Option(None, "--raw-dir", envvar="DOJOFLOW_MLEDOJO_RAW",
                                           help="Raw Kaggle downloads: <raw-dir>/<competition-id>/."),
    dest: Optional[Path] = typer.Option(None, "--dest", help="Where task folders go (default "
                                        "$DOJOFLOW_HOME/imported, searched automatically)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON report."),
) -> None:
    """Register MLE-Dojo competitions as dojoflow tasks (their metric class, public and private Kaggle boards).
    Exits non-zero when any competition fails to import."""
    from dojoflow.tasks_catalog.mledojo import competitions_root, import_competitions, read_splits, summary_rows

    wanted = [i.strip() for i in ids.split(",") if i.strip()] if ids else None
    if split:
        name = f"mledojo-{split.removeprefix('mledojo-')}"
        lists = read_splits(competitions_root(path))
        in_split = [cid for cid, names in lists.items() if name in names]
        if not in_split:
            raise typer.BadParameter(f"no competition in MLE-Dojo's list '{split}' (competition.json)")
        wanted = [i for i in (wanted or in_split) if i in in_split]
    outcomes = import_competitions(path, dest, wanted, prepared, raw_dir)
    summary = summary_rows(outcomes)
    if as_json:
        typer.echo(json.dumps({"summary": summary, "competitions": [o.to_dict() for o in outcomes]}, indent=1))
    else:
        table = Table(title=f"MLE-Dojo import: {', '.join(f'{v} {k}' for k, v in summary.items())}")
        for column in ("id", "result", "direction (metric / board)", "preparation", "sources", "note"):
            table.add_column(column)
        for o in outcomes:
            arrow = {True: "higher", False: "lower", None: "?"}
            table.add_row(o.id, "imported" if o.ok else "[red]failed[/red]",
                          f"{arrow[o.higher_is_better]} / {arrow[o.board_higher_is_better]}"
                          + (" [yellow]DISAGREE[/yellow]" if o.direction_flag else ""),
                          o.preparation, ",".join(o.sources),
                          o.reason if not o.ok else (o.reason.replace(o.preparation, "").strip(" ()") or o.boards))
        console.print(table)
    if summary["failed"]:
        raise typer.Exit(1)


@app.command("mlebench-split")
def mlebench_split(name: str = typer.Argument("lite", help="lite (= low), medium, high, split75, dev.")) -> None:
    """Print the competition ids of an MLE-bench split, one per line."""
    from dojoflow.tasks_catalog.mlebench import competition_ids

    typer.echo("\n".join(competition_ids(name)))
