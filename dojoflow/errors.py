"""Every error dojoflow raises on purpose, in one hierarchy.

The CLI turns a :class:`DojoflowError` into one red line and exit code 2: these errors describe bad input
or an unavailable resource, and their message says what to do. Anything else that escapes a command is a
bug in dojoflow and keeps its traceback. Several classes also derive from the built-in exception that
callers would naturally catch (``ValueError`` for bad values, ``KeyError`` for unknown names,
``RuntimeError`` for unavailable services), so library users can catch either.
"""

from __future__ import annotations


class DojoflowError(Exception):
    """Base class of the errors the CLI reports as a clean message (never as a traceback)."""


# -- bad input ------------------------------------------------------------------------------------------------
class UsageError(DojoflowError, ValueError):
    """A value given by the user (an option, a filter, a file) is not usable; the message says why."""


class UnknownNameError(UsageError, KeyError):
    """A name (agent, task, metric, sandbox backend, sweep, reward mode) that nothing is registered under."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownOptionError(UsageError, TypeError):
    """An option (keyword argument) that the agent, backend or command does not take."""


class UnknownTaskError(UnknownNameError):
    """No task with this id is registered."""


class SpecFieldError(DojoflowError):
    """A YAML spec is malformed; the message names the file and the field."""

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file, self.field, self.problem = file, field, problem
        super().__init__(f"{file}: field '{field}': {problem}")

    def __reduce__(self):  # picklable with its three arguments (Prefect and multiprocessing pickle errors)
        return (type(self), (self.file, self.field, self.problem))


class TaskSpecError(SpecFieldError):
    """A task spec (``task.yaml`` and its folder) is malformed."""


class SweepSpecError(SpecFieldError):
    """A sweep spec is malformed."""


class InvalidActionError(DojoflowError, ValueError):
    """An agent action that cannot be understood; the message says what a valid one looks like."""


# -- tasks and grading ----------------------------------------------------------------------------------------
class PreparationError(DojoflowError):
    """A task's data preparation failed, or a cached entry does not match its checksums."""


class LeaderboardError(DojoflowError):
    """A leaderboard file cannot be read or has no usable scores."""


class MetricInputError(DojoflowError, ValueError):
    """A metric cannot score these answers and predictions (e.g. one class only, negative values for RMSLE).

    Grading reports it as an invalid submission; any other exception from a metric is a bug.
    """


class BenchmarkImportError(DojoflowError):
    """A competition of an external benchmark (MLE-bench, MLE-Dojo) could not be imported; the message says why."""


class SynthesisError(DojoflowError):
    """Synthetic tasks could not be generated, imported or exported (``dojoflow synth``); the message says why."""


# -- where code runs ------------------------------------------------------------------------------------------
class SandboxError(DojoflowError, RuntimeError):
    """A sandbox backend cannot run code here (not installed, misconfigured)."""


class WorkerDied(SandboxError):
    """The warm sandbox's worker died or stopped answering; the harness starts a new one."""


class NoGpuError(DojoflowError, RuntimeError):
    """The pool has no GPU at all: leasing would wait forever."""


class GpuLeaseTimeout(DojoflowError, TimeoutError):
    """Every GPU stayed leased for longer than the caller was willing to wait."""


# -- episodes and services ------------------------------------------------------------------------------------
class EpisodeStateError(DojoflowError, RuntimeError):
    """An environment method was called in the wrong state (a step after the end, a step before reset)."""


class LLMError(DojoflowError, RuntimeError):
    """An LLM request that failed for good (after retries, or a non-retryable status)."""


class ContextLengthError(LLMError):
    """The request does not fit the model's context window (HTTP 400 ``context_length_exceeded``); the agents
    shorten the conversation and ask again."""


class BudgetExceeded(LLMError):
    """The episode's token budget is spent."""


class ServiceError(DojoflowError, RuntimeError):
    """A service dojoflow depends on (Prefect API, MLflow tracking, artifact store) cannot be reached."""
