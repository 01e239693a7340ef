"""Generate, verify, keep or discard: what ``dojoflow synth`` and ``dojoflow.api.synthesize`` run.

For each of ``n`` variants: write the task folder (a deterministic function of the seed task, the seed and
the variant index), prepare its data into the cache, score the reference population on it, then run the
gates (``gates.py``). A task that fails a gate is removed; the report keeps the reason. The report is
written to ``<dest>/reports/``.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dojoflow.config import Settings, get_settings
from dojoflow.errors import DojoflowError, SynthesisError
from dojoflow.synth import gates
from dojoflow.synth.dna import TaskDNA, extract_dna
from dojoflow.synth.leaderboards import POPULATIONS, write_leaderboard
from dojoflow.synth.report import Candidate, GenerationReport
from dojoflow.tasks_catalog.preparation import PreparedData, prepare_task
from dojoflow.tasks_catalog.registry import get_task, synthetic_dir
from dojoflow.tasks_catalog.spec import TaskSpec, load_spec

KINDS = ("procedural", "micro", "llm")
Writer = Callable[[int, Path], Path]  # (variant index, root) -> the task folder it wrote


@dataclass(frozen=True)
class SynthOptions:
    """What to generate and how strictly to verify it (the CLI's options)."""

    kind: str = "procedural"
    n: int = 20
    seed: int = 0
    min_rows: int = 50
    max_rows: int = 200
    n_test: int = 2000
    population: str = "quick"
    step_time_s: float = 60.0
    baseline_models: int = 2
    sandbox: str | None = None
    salt: str = ""
    signal: float = 1.0  # procedural: scales the hidden rule against the noise (0: labels are pure noise)
    family: str | None = None  # procedural: one family for every variant (default: cycle over the DNA's)
    dest: Path | None = None
    keep_rejected: bool = False
    llm: dict[str, Any] = field(default_factory=dict)  # model, base_url, api_key, token_budget, cache_dir...

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SynthesisError(f"unknown generator '{self.kind}'; choose one of {', '.join(KINDS)}")
        if self.population not in POPULATIONS:
            raise SynthesisError(f"unknown population '{self.population}'; choose one of {', '.join(POPULATIONS)}")
        if not 1 <= self.min_rows <= self.max_rows:
            raise SynthesisError(f"need 1 <= min_rows <= max_rows, got {self.min_rows} and {self.max_rows}")
        if self.n < 1 or self.n_test < 20:
            raise SynthesisError(f"need n >= 1 and n_test >= 20, got n={self.n}, n_test={self.n_test}")

    @property
    def bounds(self) -> gates.GateBounds:
        """The gates' bounds."""
        return gates.GateBounds(self.min_rows, self.max_rows, self.step_time_s, self.baseline_models)


def seed_dna(seed: TaskSpec, settings: Settings) -> tuple[TaskDNA, PreparedData]:
    """The seed's DNA, from its prepared data (prepared into the cache first if needed)."""
    prepared = prepare_task(seed, settings.data_dir)
    return extract_dna(seed, prepared), prepared


def writer_for(seed: TaskSpec, dna: TaskDNA, prepared: PreparedData, options: SynthOptions) -> tuple[Writer, str, str]:
    """The deterministic folder writer of ``options.kind``, with the generator's name and version."""
    if options.kind == "procedural":
        from dojoflow.synth.folders import write_procedural_task
        from dojoflow.synth.procedural import GENERATOR, GENERATOR_VERSION, families_for, make_recipe

        if options.family and options.family not in families_for(dna):
            raise SynthesisError(f"family '{options.family}' does not fit task '{seed.id}'; its families: "
                                 f"{', '.join(families_for(dna))}")

        def procedural(index: int, root: Path) -> Path:
            recipe = make_recipe(dna, options.seed, index, min_rows=options.min_rows, max_rows=options.max_rows,
                                 n_test=options.n_test, salt=options.salt, signal=options.signal,
                                 family=options.family)
            return write_procedural_task(recipe, dna, root)
        return procedural, GENERATOR, GENERATOR_VERSION
    if options.kind == "micro":
        from dojoflow.synth.folders import write_micro_task
        from dojoflow.synth.micro import MICRO_GENERATOR, MICRO_VERSION, make_plan

        def micro(index: int, root: Path) -> Path:
            plan = make_plan(seed, options.seed, index, dna.n_train_seed, min_rows=options.min_rows,
                             max_rows=options.max_rows)
            return write_micro_task(seed, plan, dna, root)
        return micro, MICRO_GENERATOR, MICRO_VERSION
    from dojoflow.synth.llm_generator import LLM_GENERATOR, LLM_VERSION, LLMTaskGenerator

    generator = LLMTaskGenerator(dna, options, **options.llm)
    return generator.write, LLM_GENERATOR, LLM_VERSION


def synthesize(seed_task: str, options: SynthOptions | None = None, settings: Settings | None = None,
               progress: Callable[[int, int, str], None] | None = None) -> GenerationReport:
    """Generate ``options.n`` tasks from ``seed_task``, verify each, keep those that pass; the report says why
    each other one was dropped. Kept tasks are registered (``$DOJOFLOW_HOME/synthetic`` by default)."""
    options = options or SynthOptions()
    settings = settings or get_settings()
    started = time.monotonic()
    seed = get_task(seed_task)
    dna, seed_prepared = seed_dna(seed, settings)
    write, generator, version = writer_for(seed, dna, seed_prepared, options)
    dest = Path(options.dest) if options.dest else synthetic_dir()
    dest.mkdir(parents=True, exist_ok=True)
    settings_view = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items() if k != "llm"}
    settings_view["llm"] = {k: v for k, v in options.llm.items() if k != "api_key"}
    report = GenerationReport(generator, version, seed.id, options.seed, options.n, str(dest),
                              settings=settings_view, dna=dna.to_dict())
    for index in range(options.n):
        if progress:
            progress(index, options.n, f"variant {index + 1}/{options.n}")
        candidate = verify_candidate(write, index, dest, options, settings)
        report.candidates.append(candidate)
    report.wall_s = round(time.monotonic() - started, 2)
    report.write(dest / "reports")
    if progress:
        progress(options.n, options.n, f"kept {len(report.kept)} of {options.n}")
    return report


def verify_candidate(write: Writer, index: int, dest: Path, options: SynthOptions, settings: Settings) -> Candidate:
    """Write variant ``index``, prepare it, build its leaderboard, run every gate; remove it unless it passes."""
    timings: dict[str, float] = {}
    clock = time.monotonic()
    try:
        folder = write(index, dest)
    except DojoflowError as exc:
        generator = getattr(write, "__self__", None)
        return Candidate(task_id=f"variant-{index:03d}", family="-", error=f"generation failed: {exc}",
                         usage=dict(getattr(generator, "usage", {}).get(index, {})))
    candidate = Candidate(task_id=folder.name, family=_family(folder))
    generator = getattr(write, "__self__", None)  # the LLM generator accounts tokens and cost per variant
    candidate.usage = dict(getattr(generator, "usage", {}).get(index, {}))
    timings["generate_s"] = time.monotonic() - clock
    try:
        spec = load_spec(folder)
        clock = time.monotonic()
        prepared = prepare_task(spec, settings.data_dir)
        timings["prepare_s"] = time.monotonic() - clock
        clock = time.monotonic()
        write_leaderboard(spec, prepared, options.population, regression=_regression(spec))
        timings["leaderboard_s"] = time.monotonic() - clock
    except DojoflowError as exc:
        candidate.error = f"preparation failed: {exc}"
        _discard(folder, options)
        candidate.timings = _rounded(timings)
        return candidate
    clock = time.monotonic()
    results = run_gates(spec, prepared, lambda root: write(index, root), options, settings)
    timings["gates_s"] = time.monotonic() - clock
    candidate.gates = [r.to_dict() for r in results]
    candidate.train_rows = next((r.details.get("train_rows") for r in results if r.name == "train_size"), None)
    candidate.kept = all(r.passed for r in results)
    candidate.timings = _rounded(timings)
    if not candidate.kept:
        _discard(folder, options)
    return candidate


def run_gates(spec: TaskSpec, prepared: PreparedData, regenerate: Callable[[Path], Path], options: SynthOptions,
              settings: Settings) -> list[gates.GateResult]:
    """Every gate, in order (each one runs even when an earlier one failed, so the report is complete)."""
    bounds = options.bounds
    results = [gates.gate_deterministic(spec.folder, prepared, regenerate, settings.data_dir),
               gates.gate_train_size(prepared, bounds), gates.gate_answers_best(spec, prepared),
               gates.gate_thresholds(spec)]
    baseline = gates.run_baseline(spec, settings, bounds, options.sandbox)
    results += [gates.gate_beats_trivial(spec, prepared, baseline), gates.gate_step_time(baseline, bounds)]
    return results


def _regression(spec: TaskSpec) -> bool | None:
    """Regressors or classifiers for the population of a task with its own grader (None: the metric says)."""
    if spec.grader is None:
        return None
    return spec.tags.get("target_kind") == "regression"


def _family(folder: Path) -> str:
    from dojoflow.synth.folders import read_provenance

    try:
        data = read_provenance(folder)
    except (OSError, ValueError):
        return "-"
    return str(data.get("recipe", {}).get("family") or data.get("plan", {}).get("method") or data.get("kind", "-"))


def _discard(folder: Path, options: SynthOptions) -> None:
    if options.keep_rejected:
        target = folder.parent / "rejected" / folder.name
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
    else:
        shutil.rmtree(folder, ignore_errors=True)


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in timings.items()}


def list_synthetic(split: str = "synthetic") -> list[dict[str, Any]]:
    """Registered generated tasks: id, seed task, generator, version, seed, family, folder."""
    from dojoflow.tasks_catalog.registry import tasks_in_split

    return [{"id": s.id, "seed_task": s.tags.get("seed_task"), "generator": s.tags.get("generator"),
             "generator_version": s.tags.get("generator_version"), "seed": s.tags.get("generator_seed"),
             "family": s.tags.get("family", s.tags.get("splits")), "task_type": s.task_type, "metric": s.metric_name,
             "folder": str(s.folder)} for s in tasks_in_split(split)]


__all__ = ["KINDS", "SynthOptions", "list_synthetic", "synthesize"]
