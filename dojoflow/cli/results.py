"""``dojoflow report`` and ``dojoflow export``: what the recorded episodes add up to."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from dojoflow.cli.common import console, err_console
from dojoflow.config import get_settings
from dojoflow.errors import UsageError
from dojoflow.reporting.contamination import contamination_markdown, contamination_records


def write_report_files(sections: list[Any], frame: Any, markdown: Optional[Path], plot_path: Optional[Path]) -> None:
    """The report as Markdown and/or a PNG plot per section (missing folders are created)."""
    from dojoflow.reporting.render import plot, sections_markdown

    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(sections_markdown(sections) + "\n")
        err_console.print(f"wrote {markdown}")
    if plot_path:
        plot_path.parent.mkdir(parents=True, exist_ok=True)
        for section in sections:
            rows = frame[(frame["feedback_protocol"] == section.protocol)
                         & (frame["description_variant"] == section.description)]
            path = plot_path if len(sections) == 1 else plot_path.with_name(
                f"{plot_path.stem}-{section.label}{plot_path.suffix}")
            err_console.print(f"wrote {plot(section, rows, path)}")


def report(results: Optional[Path] = typer.Option(None, help="Results folder or Parquet file "
                                                           "(default: $DOJOFLOW_HOME/results)."),
           markdown: Optional[Path] = typer.Option(None, help="Also write the table as Markdown here."),
           plot_path: Optional[Path] = typer.Option(None, "--plot", help="Also write a PNG plot here."),
           pool: bool = typer.Option(False, "--pool", help="Pool an agent's results obtained in different ways "
                                     "(versions, hardware, budgets, ...); the report says what it pooled. Feedback "
                                     "protocols are never pooled."),
           as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
           mlebench_json: Optional[Path] = typer.Option(None, "--mlebench-json", help="Also write the results as "
                                                        "MLE-bench's grading-report JSON here (a file, or a folder "
                                                        "for <timestamp>_grading_report.json).")) -> None:
    """Aggregate the results table: rates (mean ± SEM across seeds) per agent and task split, AUP and Elo, one
    section per feedback protocol, with the conditions the results were obtained under."""
    from dojoflow.storage.results import completed, load_results

    frame = load_results(results or get_settings().results_dir)
    show_report(frame, markdown, plot_path, pool, as_json)
    if mlebench_json is not None:
        from dojoflow.reporting.mlebench_report import write_grading_report

        err_console.print(f"wrote {write_grading_report(completed(frame), mlebench_json)}")


def show_report(frame: Any, markdown: Optional[Path], plot_path: Optional[Path], pool: bool, as_json: bool) -> None:
    """Print the report of a results frame (a table per feedback protocol, or JSON) and write its files."""
    import json

    from dojoflow.reporting.pooling import report_sections
    from dojoflow.reporting.render import to_rich_table

    sections = report_sections(frame, pool=pool)
    probe = contamination_or_none(frame)
    if as_json:
        print(json.dumps({"episodes": len(frame), "sections": [s.to_dict() for s in sections],
                          **({"contamination": contamination_records(probe)} if probe is not None else {})},
                         indent=1, default=str))
    else:
        for section in sections:
            console.print(to_rich_table(section))
        if probe is not None:
            console.print(contamination_markdown(probe))
    write_report_files(sections, frame, markdown, plot_path)
    if markdown and probe is not None:
        markdown.write_text(markdown.read_text() + "\n" + contamination_markdown(probe) + "\n")


def contamination_or_none(frame: Any) -> Any:
    """The contamination comparison of ``frame``, or None when no agent and task ran under both variants."""
    from dojoflow.reporting.contamination import contamination_table

    try:
        return contamination_table(frame)
    except UsageError:
        return None


def contamination(results: Optional[Path] = typer.Option(None, help="Results folder or Parquet file "
                                                                  "(default: $DOJOFLOW_HOME/results)."),
                  as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """The contamination probe: per agent and task, the score on the original description against the score on
    the obfuscated one (runs with --description obfuscated); drop > 0 means worse without the task's names."""
    import json

    from dojoflow.reporting.contamination import contamination_table
    from dojoflow.storage.results import load_results

    table = contamination_table(load_results(results or get_settings().results_dir))
    if as_json:
        print(json.dumps(contamination_records(table), indent=1, default=str))
    else:
        console.print(contamination_markdown(table))


def export_command(out: Path = typer.Argument(..., help="Output file (.parquet; a .jsonl twin is written too)."),
                   kind: str = typer.Option(..., "--format",
                                            help="sft (one chat per episode) or rl (one row per step)."),
                   filters: list[str] = typer.Option([], "--filter", help="task=ID, agent=NAME, medal=gold|any|none, "
                                                                        "valid=true|false (repeatable)."),
                   episodes: Optional[Path] = typer.Option(None, help="Episodes folder (default: "
                                                                    "$DOJOFLOW_HOME/episodes).")
                   ) -> None:
    """Export recorded trajectories as training data (Parquet + JSONL); see docs/trajectories.md."""
    from dojoflow.storage.export import EpisodeFilter, export

    source = episodes or get_settings().episodes_dir
    summary = export(source, kind, out, EpisodeFilter.parse(filters))
    console.print(f"exported {summary['episodes']} episodes as {summary['rows']} {kind} rows: "
                  f"{summary['parquet']} and {summary['jsonl']}")
    if summary["episodes"] == 0:
        from dojoflow.storage.export import recorded_values

        seen = recorded_values(source)
        err_console.print("[yellow]no recorded episode matches" + (f" {' '.join(filters)}" if filters else "")
                          + f"[/yellow] ({seen['episodes']} episodes in {source}; tasks: "
                          f"{', '.join(seen['tasks']) or '-'}; agents: {', '.join(seen['agents']) or '-'})")
        raise typer.Exit(1)


COMMANDS = {"report": report, "export": export_command, "contamination": contamination}
