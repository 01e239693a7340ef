"""Why an episode failed, in one word a sweep can act on: ``task``, ``agent`` or ``infrastructure``.

Deterministic errors - a task whose preparation or spec is broken, an agent that cannot be built with its
options - fail the same way every time, so they are not retried: retrying a broken preparation only hides
it behind minutes of identical attempts. Everything else (a service that did not answer, a sandbox or worker
that died, a full disk, a bug) is treated as an infrastructure failure and retried. A preparation that
failed on I/O (its output names an ``OSError``, a connection error or a timeout: the raw data store did not
answer) is infrastructure too. The class is recorded in
the results row (``error_class``), the MLflow run (tag ``dojoflow.error_class``) and the Prefect state
message.
"""

from __future__ import annotations

import re

from dojoflow.errors import (
    BenchmarkImportError,
    LeaderboardError,
    MetricInputError,
    PreparationError,
    SpecFieldError,
    UnknownNameError,
    UnknownTaskError,
    UsageError,
)

TASK, AGENT, INFRASTRUCTURE = "task", "agent", "infrastructure"
_TASK_ERRORS = (PreparationError, SpecFieldError, UnknownTaskError, LeaderboardError, MetricInputError,
                BenchmarkImportError)
_AGENT_ERRORS = (UnknownNameError, UsageError)  # an unknown agent, an option it does not take
_IO_FAILURE = re.compile(r"\b(OSError|IOError|ConnectionError|Connection\w*Error|TimeoutError|URLError|"
                         r"HTTPError|BrokenPipeError|EndpointConnectionError|took longer than)\b")


def classify_error(exc: BaseException) -> str:
    """``task``, ``agent`` (both deterministic) or ``infrastructure`` (worth retrying)."""
    if isinstance(exc, PreparationError) and _IO_FAILURE.search(str(exc)):
        return INFRASTRUCTURE
    if isinstance(exc, _TASK_ERRORS):
        return TASK
    if isinstance(exc, _AGENT_ERRORS):
        return AGENT
    return INFRASTRUCTURE


def is_retryable(error_class: str) -> bool:
    """Whether an episode that failed with ``error_class`` is worth running again unchanged."""
    return error_class == INFRASTRUCTURE


def describe(exc: BaseException) -> str:
    """``<Type>: <message>`` on one line (the end reason of a failed episode)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_interruption(exc: BaseException) -> bool:
    """SIGINT, or SIGTERM as it arrives inside a Prefect flow run.

    The CLI turns SIGTERM into ``KeyboardInterrupt``; inside a flow run Prefect's engine replaces that handler
    with its own, which raises ``prefect.exceptions.TerminationSignal`` (a ``BaseException``, not a
    ``KeyboardInterrupt``) - the signal a worker's cancellation, a node drain or ``kill`` sends. Both must end
    the episode's run KILLED and keep its partial trajectory. Prefect is only consulted when it is loaded:
    nothing else raises its signals."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    import sys

    prefect_exceptions = sys.modules.get("prefect.exceptions")
    return prefect_exceptions is not None and isinstance(exc, prefect_exceptions.TerminationSignal)
