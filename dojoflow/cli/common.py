"""What every command module shares: the consoles, value formatting, and the error policy.

Error policy (applied once, to the whole command tree, by :class:`ErrorPolicyGroup`): a
:class:`~dojoflow.errors.DojoflowError` is bad input or an unavailable resource, printed as one red line
on stderr with exit code 2; any other exception is a bug in dojoflow and keeps its traceback, followed by
a hint to report it (exit code 1).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from dojoflow.errors import DojoflowError

EXIT_USAGE = 2
ENVIRONMENT_ERRNOS = (errno.EACCES, errno.EROFS, errno.EPERM, errno.ENOSPC, errno.EDQUOT)
EXIT_BUG = 1
REPORT_HINT = ("This is a bug in dojoflow, not in your input: please report it with the traceback above "
               "(and the command you ran).")
PIPED_WIDTH = 120  # piped output (CI logs, `| tee`) is not wrapped at 80 columns

console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else PIPED_WIDTH)


def print_error(message: str) -> None:
    """One red line on stderr."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


class ErrorPolicyGroup(TyperGroup):
    """The root command group: applies the error policy of the module docstring to every command."""

    def invoke(self, ctx: Any) -> Any:
        """Invoke the command under the error policy."""
        _on_sigterm_interrupt()
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            signum = _received.pop() if _received else signal.SIGINT
            err_console.print(f"[yellow]stopped by {signal.Signals(signum).name}[/yellow]: what finished is "
                              "recorded; `dojoflow sweep status` / `sweep retry` pick up interrupted sweeps")
            raise typer.Exit(128 + signum) from None
        except DojoflowError as exc:
            print_error(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except OSError as exc:
            if exc.errno not in ENVIRONMENT_ERRNOS:
                raise
            where = f" {exc.filename}" if exc.filename else ""
            print_error(f"cannot write{where}: {exc.strerror}. Point DOJOFLOW_HOME (and TMPDIR) at a writable "
                        "folder with free space")
            raise typer.Exit(EXIT_USAGE) from None
        except Exception as exc:  # noqa: BLE001 - a bug: show everything, then say what to do with it
            if _is_cli_signal(exc):
                raise
            traceback.print_exc()
            err_console.print(f"[yellow]{REPORT_HINT}[/yellow]")
            raise typer.Exit(EXIT_BUG) from None


_received: list[int] = []
FORCED_EXIT_AFTER_S = 20.0  # after SIGTERM, threads that do not stop (a running step) are not waited for


def _on_sigterm_interrupt() -> Any:
    """SIGTERM interrupts the command as Ctrl-C does (so episodes end and record what they have), and
    ends the process outright if it is still alive ``FORCED_EXIT_AFTER_S`` later."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        _received.append(signum)
        timer = threading.Timer(FORCED_EXIT_AFTER_S, os._exit, args=(128 + signum,))
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _is_cli_signal(exc: Exception) -> bool:
    """Typer's (and its vendored click's) own control-flow exceptions: exit codes, aborts, usage errors."""
    return isinstance(exc, (typer.Exit, typer.Abort)) or type(exc).__module__.split(".")[0] in ("typer", "click")


def fmt(value: Any, digits: int = 4) -> str:
    """A value for a table cell (see :func:`dojoflow.reporting.episode.format_value`), 4 significant digits."""
    from dojoflow.reporting.episode import format_value

    return format_value(value, digits)




def prefect_ready() -> None:
    """Point Prefect at dojoflow's home (before Prefect is imported: it reads its settings at import); a
    configured Prefect server that does not answer is a clean error; an ephemeral server Prefect starts
    ends with this process."""
    import os

    from dojoflow.config import configure_prefect_environment, get_settings
    from dojoflow.lifecycle import tie_prefect_ephemeral_server

    configure_prefect_environment(get_settings())
    api = os.environ.get("PREFECT_API_URL")
    if api:
        check_http(api.rstrip("/") + "/health", "the Prefect server (PREFECT_API_URL)")
    tie_prefect_ephemeral_server()


def check_http(url: str, what: str, timeout_s: float = 5.0) -> None:
    """Fail with one clear line when nothing answers at ``url``."""
    import urllib.error
    import urllib.request

    from dojoflow.errors import ServiceError

    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return  # something answers
    except OSError as exc:
        raise ServiceError(f"{what} at {url} does not answer ({getattr(exc, 'reason', exc)}); start it, or unset "
                           "the variable to use Prefect's local API") from None
