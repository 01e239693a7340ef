"""What every command module shares: the consoles, value formatting, and the error policy.

Error policy (applied once, to the whole command tree, by :class:`ErrorPolicyGroup`): a
:class:`~dojoflow.errors.DojoflowError` is bad input or an unavailable resource, printed as one red line
on stderr with exit code 2; any other exception is a bug in dojoflow and keeps its traceback, followed by
a hint to report it (exit code 1).
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from dojoflow.errors import DojoflowError

EXIT_USAGE = 2
EXIT_BUG = 1
REPORT_HINT = ("This is a bug in dojoflow, not in your input: please report it with the traceback above "
               "(and the command you ran).")
PIPED_WIDTH = 120  # piped output (CI logs, `| tee`) is not wrapped at 80 columns

console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else PIPED_WIDTH)


def print_error(message: str) -> None:
    """One red line on stderr."""
    err_console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)


class ErrorPolicyGroup(TyperGroup):
    """The root command group: applies the error policy of the module docstring to every command."""

    def invoke(self, ctx: Any) -> Any:
        """Invoke the command under the error policy."""
        try:
            return super().invoke(ctx)
        except DojoflowError as exc:
            print_error(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except Exception as exc:  # noqa: BLE001 - a bug: show everything, then say what to do with it
            if _is_cli_signal(exc):
                raise
            traceback.print_exc()
            err_console.print(f"[yellow]{REPORT_HINT}[/yellow]")
            raise typer.Exit(EXIT_BUG) from None


def _is_cli_signal(exc: Exception) -> bool:
    """Typer's (and its vendored click's) own control-flow exceptions: exit codes, aborts, usage errors."""
    return isinstance(exc, (typer.Exit, typer.Abort)) or type(exc).__module__.split(".")[0] in ("typer", "click")


def fmt(value: Any, digits: int = 4) -> str:
    """A value for a table cell: ``-`` for None, yes/no for booleans, ``digits`` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def human_size(n: float) -> str:
    """Bytes as B, KiB, MiB or GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def prefect_ready() -> None:
    """Point Prefect at dojoflow's home (before Prefect is imported: it reads its settings at import)."""
    from dojoflow.config import configure_prefect_environment, get_settings

    configure_prefect_environment(get_settings())
