"""``dojoflow sweep``: run, status, retry, report and flush sweeps of agents x tasks x seeds."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from dojoflow.cli.common import console, err_console, fmt, prefect_ready
from dojoflow.config import get_settings

app = typer.Typer(help="Sweeps of agents x tasks x seeds on Prefect: run, status, retry, report.",
                  no_args_is_help=True)
PROGRESS_POLL_S = 0.5


def _follow_progress(events_file: Path, offset: int, only_keys: list[str] | None, progress: Any, bar: Any,
                     stop: threading.Event) -> None:
    """Advance the progress bar for every episode the sweep reports finished (its ``events.jsonl``)."""
    from dojoflow.flows.sweep import follow_events

    while True:
        stopping = stop.wait(PROGRESS_POLL_S)
        events, offset = follow_events(events_file, offset)
        for event in events:
            if not only_keys or event["key"] in only_keys:
                progress.update(bar, advance=1 if event.get("ended", True) else 0,
                                last=f"{event['key']}: {event['state']}")
        if stopping:
            return


def run_sweep_flow(spec: Any, only_keys: list[str] | None = None) -> list[dict]:
    """Run the sweep flow with a live progress bar that follows the sweep's event file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dojoflow.flows.sweep import EVENTS_FILE, sweep_dir

    prefect_ready()
    from dojoflow.flows.prefect_sweep import sweep_states

    events_file = sweep_dir(get_settings(), spec.name) / EVENTS_FILE
    offset = events_file.stat().st_size if events_file.is_file() else 0
    total = len(only_keys) if only_keys else len(spec.episodes())
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[last]}"), console=err_console) as progress:
        bar = progress.add_task(f"sweep {spec.name}", total=total, last="starting Prefect...")
        stop = threading.Event()
        follower = threading.Thread(target=_follow_progress, daemon=True,
                                    args=(events_file, offset, only_keys, progress, bar, stop))
        follower.start()
        try:
            with contextlib.redirect_stdout(sys.stderr):  # libraries' chatter must not mix with --json output
                return sweep_states(spec.to_dict(), only_keys)
        finally:
            stop.set()
            follower.join()


def print_states(states: list[dict]) -> None:
    """The episodes of a sweep as a table, then counts per state."""
    table = Table(title="episodes")
    for column in ("agent", "task", "seed", "state", "valid", "score", "error class", "error"):
        table.add_column(column, overflow="fold")
    for s in states:
        table.add_row(s["agent"], s["task"], str(s["seed"]), s["state"], fmt(s["valid"]), fmt(s["score"], 6),
                      s.get("error_class") or "", (s["error"] or "")[:120])
    console.print(table)
    counts: dict[str, int] = {}
    for s in states:
        counts[s["state"]] = counts.get(s["state"], 0) + 1
    console.print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))


@app.command("run")
def sweep_run(spec_file: Path = typer.Argument(..., help="Sweep spec (YAML; see examples/sweep.yaml)."),
              as_json: bool = typer.Option(False, "--json", help="Print the episode states as JSON.")) -> None:
    """Run (or resume) a sweep: completed episodes are skipped."""
    from dojoflow.flows.sweep_spec import load_sweep_spec

    spec = load_sweep_spec(spec_file)
    states = run_sweep_flow(spec)
    print(json.dumps(states)) if as_json else print_states(states)
    if any(s["state"] != "completed" for s in states):
        err_console.print(f"some episodes did not complete: `dojoflow sweep retry {spec.name}` re-runs them")
        raise typer.Exit(1)


@app.command("status")
def sweep_status_command(sweep_id: str = typer.Argument(..., help="Sweep id (its name)."),
                         as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Each episode's state: completed, failed, crashed, running or pending."""
    from dataclasses import asdict

    from dojoflow.flows.sweep import load_saved_spec, sweep_status

    settings = get_settings()
    states = [asdict(s) for s in sweep_status(settings, load_saved_spec(settings, sweep_id))]
    print(json.dumps(states)) if as_json else print_states(states)


@app.command("retry")
def sweep_retry(sweep_id: str = typer.Argument(..., help="Sweep id (its name)."),
                as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Re-run only the episodes that failed or crashed."""
    from dojoflow.flows.sweep import load_saved_spec, sweep_status

    settings = get_settings()
    spec = load_saved_spec(settings, sweep_id)
    keys = [s.key for s in sweep_status(settings, spec) if s.state in ("failed", "crashed")]
    if not keys:
        console.print("nothing to retry: no failed or crashed episodes")
        return
    states = run_sweep_flow(spec, keys)
    print(json.dumps(states)) if as_json else print_states(states)
    if any(s["state"] in ("failed", "crashed") for s in states):
        raise typer.Exit(1)


@app.command("report")
def sweep_report(sweep_id: str = typer.Argument(..., help="Sweep id (its name)."),
                 markdown: Optional[Path] = typer.Option(None, help="Also write Markdown here."),
                 plot_path: Optional[Path] = typer.Option(None, "--plot", help="Also write a PNG plot here."),
                 pool: bool = typer.Option(False, "--pool", help="Pool an agent's results obtained in different "
                                           "ways (e.g. a sweep resumed after an upgrade); the report says so."),
                 as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The sweep's aggregated report (mean ± SEM across seeds, AUP, Elo) with its conditions."""
    from dojoflow.cli.results import show_report
    from dojoflow.flows.sweep import load_saved_spec
    from dojoflow.storage.results import load_results

    settings = get_settings()
    load_saved_spec(settings, sweep_id)
    frame = load_results(settings.results_dir)
    show_report(frame[frame["sweep_id"] == sweep_id], markdown, plot_path, pool, as_json)


@app.command("flush")
def sweep_flush() -> None:
    """Deliver what was parked while the artifact store or the tracking server was unreachable."""
    from dojoflow.storage.recording import flush_pending

    delivered, left = flush_pending(get_settings())
    console.print(f"delivered {delivered} pending batches; {left} still waiting")
    if left:
        raise typer.Exit(1)
