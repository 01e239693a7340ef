"""``dojoflow synth``: generate verified synthetic tasks from a seed task; list them; SandMLE import/export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from dojoflow.cli.common import console, err_console
from dojoflow.errors import UsageError

app = typer.Typer(help="Generate verified synthetic micro-scale tasks (after SandMLE); SandMLE import/export.",
                  invoke_without_command=True)


@app.callback()
def synth(
    ctx: typer.Context,
    seed_task: Optional[str] = typer.Option(None, "--from", help="Seed task id (built-in, imported, or any "
                                            "registered task)."),
    n: int = typer.Option(20, "--n", help="How many variants to generate (the report says how many were kept)."),
    kind: str = typer.Option("procedural", "--kind", help="procedural (offline, known data-generating process), "
                             "micro (subsample the seed's training rows) or llm (four roles over an "
                             "OpenAI-compatible endpoint)."),
    seed: int = typer.Option(0, "--seed", help="Generation seed: the same seed gives the same bytes."),
    min_rows: int = typer.Option(50, "--min-rows", help="Fewest training rows (also the gate's lower bound)."),
    max_rows: int = typer.Option(200, "--max-rows", help="Most training rows (also the gate's upper bound)."),
    n_test: int = typer.Option(2000, "--test-rows", help="Test rows of procedural tasks."),
    population: str = typer.Option("quick", "--population", help="Reference population: quick (~40 settings, "
                                   "the slowest left out) or full (~50, as the built-in leaderboards)."),
    step_time_s: float = typer.Option(60.0, "--step-time", help="Gate: the most seconds a baseline step may take."),
    family: Optional[str] = typer.Option(None, "--family", help="Procedural: one hidden-rule family for every "
                                         "variant (default: cycle over the families that fit the seed)."),
    salt: str = typer.Option("", "--salt", envvar="DOJOFLOW_SYNTH_SALT", help="Secret mixed into the variant "
                             "seeds, so the data cannot be regenerated without it (see docs/synthetic.md)."),
    dest: Optional[Path] = typer.Option(None, "--dest", help="Where kept tasks go (default "
                                        "$DOJOFLOW_HOME/synthetic, searched automatically)."),
    keep_rejected: bool = typer.Option(False, "--keep-rejected", help="Move rejected tasks to <dest>/rejected "
                                       "instead of deleting them."),
    model: Optional[str] = typer.Option(None, "--model", help="LLM generator: model name."),
    base_url: Optional[str] = typer.Option(None, "--base-url", envvar="DOJOFLOW_LLM_BASE_URL",
                                           help="LLM generator: OpenAI-compatible endpoint."),
    token_budget: Optional[int] = typer.Option(None, "--token-budget", help="LLM generator: tokens per task."),
    as_json: bool = typer.Option(False, "--json", help="Print the generation report as JSON."),
) -> None:
    """Generate N tasks from a seed task, verify each with the gates, keep those that pass, write the report."""
    if ctx.invoked_subcommand is not None:
        return
    if not seed_task:
        raise UsageError("dojoflow synth needs --from TASK (or a subcommand: list, import-sandmle, export-sandmle)")
    from dojoflow.synth.pipeline import SynthOptions, synthesize

    llm = {k: v for k, v in (("model", model), ("base_url", base_url), ("token_budget", token_budget)) if v}
    if kind == "llm" and "model" not in llm:
        raise UsageError("--kind llm needs --model (and --base-url for a non-OpenAI endpoint)")
    options = SynthOptions(kind=kind, n=n, seed=seed, min_rows=min_rows, max_rows=max_rows, n_test=n_test,
                           population=population, step_time_s=step_time_s, family=family, salt=salt, dest=dest,
                           keep_rejected=keep_rejected, llm=llm)

    def progress(done: int, total: int, message: str) -> None:
        err_console.print(f"[dim]{seed_task}: {message}[/dim]", highlight=False)

    report = synthesize(seed_task, options, progress=progress)
    if as_json:
        print(json.dumps(report.to_dict(), indent=1, default=str))
        return
    table = Table(title=f"{report.generator} from {seed_task}: kept {len(report.kept)} of {len(report.candidates)} "
                        f"(yield {report.yield_rate:.0%}, {report.wall_s:.0f} s)")
    for column in ("task", "family", "train rows", "kept", "reasons"):
        table.add_column(column)
    for c in report.candidates:
        table.add_row(c.task_id, c.family, str(c.train_rows or "-"), "yes" if c.kept else "[red]no[/red]",
                      "; ".join(c.reasons) or "-")
    console.print(table)
    console.print(f"report: {report.path}")


@app.command("list")
def synth_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the registered synthetic tasks with their provenance."""
    from dojoflow.synth.pipeline import list_synthetic

    rows = list_synthetic()
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title=f"{len(rows)} synthetic tasks")
    for column in ("id", "seed task", "generator", "seed", "family", "metric"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["id"], str(r["seed_task"]), f"{r['generator']} {r['generator_version']}", str(r["seed"]),
                      str(r["family"]), r["metric"])
    console.print(table)


@app.command("import-sandmle")
def import_sandmle(
    path: Path = typer.Argument(..., help="A SandMLE task bundle (one folder per task) or one task folder."),
    dest: Optional[Path] = typer.Option(None, "--dest", help="Where task folders go (default "
                                        "$DOJOFLOW_HOME/synthetic)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Register SandMLE-format tasks (description.md, train/test, sample_submission.csv, answer.csv,
    evaluator.py) as dojoflow tasks graded by their evaluator."""
    from dojoflow.synth.sandmle import import_sandmle_tasks

    done, failed = import_sandmle_tasks(path, dest)
    if as_json:
        print(json.dumps({"imported": [str(p) for p in done], "failed": failed}, indent=1))
        return
    for folder in done:
        console.print(f"imported [bold]{folder.name}[/bold] -> {folder}")
    for name, reason in failed.items():
        err_console.print(f"[yellow]not imported {name}:[/yellow] {reason}", highlight=False)


@app.command("export-sandmle")
def export_sandmle(
    task_ids: list[str] = typer.Argument(..., help="Task ids to export (e.g. every id of `dojoflow synth list`)."),
    out: Path = typer.Option(..., "--out", help="Folder to write <task>/prepared/public/ into."),
) -> None:
    """Write dojoflow tasks in SandMLE's layout (with a standalone evaluator.py) for SandMLE's trainer."""
    from dojoflow.synth.sandmle import export_sandmle_task

    for task_id in task_ids:
        folder = export_sandmle_task(task_id, out)
        console.print(f"exported [bold]{task_id}[/bold] -> {folder}")
