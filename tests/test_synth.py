"""Synthetic tasks (dojoflow synth): recipes are deterministic and keep the seed's structure, every gate fails
when its condition is broken on purpose, kept tasks run episodes and sweeps, micro variants keep the seed's
test set, imported MLE-bench competitions seed both generators, SandMLE import/export round-trips, and the
SandMLE rewards follow the release and the paper."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dojoflow.synth import gates
from dojoflow.synth.dna import TaskDNA
from dojoflow.synth.procedural import families_for, make_recipe, materialise
from dojoflow.synth.sandmle import threshold_leaderboard, thresholds_monotonic
from dojoflow.tasks_catalog.leaderboard import load_leaderboard

DNA = TaskDNA(seed_task="toy", task_type="tabular-regression", target="regression", inputs="tabular",
              metric="rmse", higher_is_better=False, metric_source="seed", n_targets=1, n_classes=0, n_numeric=5,
              n_categorical=2, missing_rate=0.0, minority_share=0.5, n_train_seed=300, n_test_seed=100,
              positive_target=False)
KINDS = {
    "binary": dict(task_type="tabular-classification-binary", target="binary", metric="roc_auc",
                   higher_is_better=True, n_classes=2, minority_share=0.3),
    "multiclass": dict(task_type="tabular-classification-multiclass", target="multiclass", metric="accuracy",
                       higher_is_better=True, n_classes=4),
    "ordinal": dict(task_type="tabular-classification-ordinal", target="ordinal",
                    metric="quadratic_weighted_kappa", higher_is_better=True, n_classes=5),
    "multilabel": dict(task_type="tabular-classification-multilabel", target="multilabel",
                       metric="roc_auc_mean_columnwise", higher_is_better=True, n_targets=4, n_classes=2),
    "multioutput": dict(task_type="tabular-regression-multioutput", target="multioutput",
                        metric="rmse_mean_columnwise", n_targets=3),
    "time-series": dict(task_type="time-series-forecasting", target="time-series", metric="mae"),
    "text": dict(task_type="text-classification", target="binary", inputs="text", metric="roc_auc",
                 higher_is_better=True, n_classes=2),
    "images": dict(task_type="image-classification", target="multiclass", inputs="images", metric="accuracy",
                   higher_is_better=True, n_classes=3),
}


# -- recipes: fast ------------------------------------------------------------------------------------------
def test_same_seed_same_bytes_and_another_seed_other_data():
    a = materialise(make_recipe(DNA, 7, 0, n_test=100)).to_csv(index=False)
    b = materialise(make_recipe(DNA, 7, 0, n_test=100)).to_csv(index=False)
    c = materialise(make_recipe(DNA, 8, 0, n_test=100)).to_csv(index=False)
    assert a == b and a != c
    salted = make_recipe(DNA, 7, 0, n_test=100, salt="secret")
    assert salted["data_seed"] != make_recipe(DNA, 7, 0, n_test=100)["data_seed"]


def test_tabular_families_cycle_and_keep_their_structure():
    families = families_for(replace(DNA, **KINDS["binary"]))
    assert families == ("linear", "nonlinear", "interactions", "thresholds", "categorical", "missing",
                        "label-noise", "imbalance")
    assert "imbalance" not in families_for(DNA)
    dna = replace(DNA, **KINDS["binary"])
    for index, family in enumerate(families):
        recipe = make_recipe(dna, 0, index, n_test=400)
        frame = materialise(recipe)
        assert recipe["family"] == family and 50 <= recipe["n_train"] <= 200
        assert len(frame) == recipe["n_train"] + 400 and set(frame["blight" if "blight" in frame else
                                                                   recipe["targets"][0]]) == {0, 1}
        features = frame.drop(columns=recipe["targets"])
        assert features.isna().to_numpy().any() == (family == "missing")
        share = frame[recipe["targets"][0]].mean()
        assert share < 0.2 if family == "imbalance" else share > 0.2


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_target_kind_materialises(kind, tmp_path):
    dna = replace(DNA, **KINDS[kind])
    recipe = make_recipe(dna, 0, 0, n_test=100)
    frame = materialise(recipe, tmp_path, "t")
    targets = recipe["targets"]
    assert len(targets) == (KINDS[kind].get("n_targets") or 1) and all(t in frame for t in targets)
    if recipe["classes"] and kind in ("multiclass", "ordinal", "images"):
        assert set(frame[targets[0]]) <= set(recipe["classes"]) and frame[targets[0]].nunique() >= 2
    if kind == "time-series":
        assert recipe["family"] == "time-order" and pd.to_datetime(frame["date"]).is_monotonic_increasing
    if kind == "text":
        assert recipe["family"] == "text-templates" and frame["text"].str.split().str.len().min() >= 6
    if kind == "images":
        assert recipe["family"] == "procedural-images" and len(list(tmp_path.glob("*.png"))) == len(frame)


def test_threshold_leaderboard_reproduces_sandmle_thresholds(tmp_path):
    for higher, values in ((True, [0.9, 0.85, 0.8, 0.7]), (False, [1.0, 1.5, 2.0, 3.0])):
        path = tmp_path / "lb.csv"
        path.write_text(threshold_leaderboard(values, higher, "t"))
        t = load_leaderboard(path, higher, "reference").thresholds()
        assert [t["gold"], t["silver"], t["bronze"], t["median"]] == pytest.approx(values)
    assert not thresholds_monotonic([0.8, 0.9, 0.7, 0.6], True)
    assert not thresholds_monotonic([0.7, 0.7, 0.7, 0.7], True)


def test_sandmle_rewards_as_released_and_as_in_the_paper():
    from dojoflow.dojo.rewards import reward_for
    from dojoflow.tasks_catalog.grading import GradeResult
    from dojoflow.tasks_catalog.leaderboard import Leaderboard

    board = Leaderboard(tuple(1.0 - 0.1 * i for i in range(10)), True, "reference")  # gold 1.0 ... median 0.55

    def grade(score):
        return GradeResult("t", "public", True, score=score, placement=board.place(score), format_ok=True)

    def release(score, rate=1.0):
        return reward_for("sandmle_release", grade(score) if score is not None else None, None, True,
                          format_rate=rate)

    def paper(score, executed=True):
        return reward_for("sandmle_paper", grade(score) if score is not None else None, None, True,
                          executed=executed)

    assert release(1.0) == pytest.approx(0.2 + 0.7 + 0.1)
    assert release(0.9) == pytest.approx(0.2 + 0.6 + 0.1)  # silver (position 2)
    assert release(0.7) == pytest.approx(0.2 + 0.5 + 0.1)  # bronze (position 4)
    assert release(0.55, rate=0.5) == pytest.approx(0.2 + 0.1 + 0.05)  # at the median: the release's >=
    assert release(0.1) == pytest.approx(0.3) and release(None, rate=0.0) == 0.0
    assert paper(1.0) == pytest.approx(1.0)
    assert paper(0.9) == pytest.approx(0.1 + 0.3 + 0.1 + 0.2 + 0.2)
    assert paper(0.6) == pytest.approx(0.5)  # above the median, no medal
    assert paper(0.55) == pytest.approx(0.4)  # ties the median: the paper's median milestone is strict here
    assert paper(None, executed=False) == pytest.approx(0.1) and paper(None) == pytest.approx(0.4)


def test_cli_needs_a_seed_task_and_lists_nothing_yet():
    from dojoflow.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["synth"])
    assert result.exit_code == 2 and "--from" in result.output
    listed = runner.invoke(app, ["synth", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output) == []
    bad = runner.invoke(app, ["synth", "--from", "cars-mpg", "--kind", "nope"])
    assert bad.exit_code == 2 and "unknown generator" in bad.output


# -- generated tasks: slow ----------------------------------------------------------------------------------
def _options(dest: Path, **kw):
    from dojoflow.synth.pipeline import SynthOptions

    return SynthOptions(**{"n": 1, "n_test": 300, "dest": dest, "baseline_models": 1, **kw})


@pytest.fixture(scope="module")
def kept(settings, tmp_path_factory):
    """One procedural task from cars-mpg, kept, on DOJOFLOW_TASK_PATH for the module."""
    import os

    from dojoflow.synth.pipeline import synthesize
    from dojoflow.tasks_catalog.preparation import prepare_task
    from dojoflow.tasks_catalog.registry import get_task

    dest = tmp_path_factory.mktemp("synthetic")
    report = synthesize("cars-mpg", _options(dest), settings)
    os.environ["DOJOFLOW_TASK_PATH"] = str(dest)
    spec = get_task(report.kept[0])
    yield report, spec, prepare_task(spec, settings.data_dir), dest
    os.environ.pop("DOJOFLOW_TASK_PATH", None)


@pytest.mark.slow
def test_a_kept_task_is_an_ordinary_task_with_provenance(kept):
    report, spec, prepared, dest = kept
    assert report.kept == [spec.id] and report.yield_rate == 1.0
    data = json.loads(Path(report.path).read_text())
    assert data["generated"] == 1 and data["yield"] == 1.0
    assert [g["name"] for g in data["candidates"][0]["gates"]] == list(gates.GATES)
    assert spec.exposure.source == "generated" and "synthetic" in spec.splits
    assert (spec.tags["seed_task"], spec.tags["generator"], spec.tags["generator_seed"]) == (
        "cars-mpg", "dojoflow-procedural", "0")
    board = load_leaderboard(spec.leaderboard_path, spec.higher_is_better, "reference")
    assert board.num_teams >= 35 and "dojoflow synth" in spec.leaderboard_path.read_text()
    assert (dest / "reports" / "dojoflow-procedural-cars-mpg-s0.md").read_text().startswith("# Generation report")


@pytest.mark.slow
def test_each_gate_fails_on_purpose(kept, settings, tmp_path):
    from dojoflow.synth.folders import write_procedural_task
    from dojoflow.synth.pipeline import seed_dna
    from dojoflow.tasks_catalog.registry import get_task

    _, spec, prepared, _ = kept
    dna, _ = seed_dna(get_task("cars-mpg"), settings)
    other = gates.gate_deterministic(spec.folder, prepared, lambda root: write_procedural_task(
        make_recipe(dna, 1, 0, n_test=300), dna, root), settings.data_dir)
    assert not other.passed and "changed" in other.reason
    same = gates.gate_deterministic(spec.folder, prepared, lambda root: write_procedural_task(
        make_recipe(dna, 0, 0, n_test=300), dna, root), settings.data_dir)
    assert same.passed, same.reason

    size = gates.gate_train_size(prepared, gates.GateBounds(min_rows=500, max_rows=900))
    assert not size.passed and "outside the bounds 500-900" in size.reason

    broken = tmp_path / spec.id  # a leaderboard entry better than the truth: the grader is not rewarding truth
    shutil.copytree(spec.folder, broken)
    text = spec.leaderboard_path.read_text().replace("\n1,", "\n1,impossible,-1.0,-1.0\n0,", 1)
    (broken / "leaderboard.csv").write_text(text)
    bad = replace(spec, folder=broken)
    assert not gates.gate_answers_best(bad, prepared).passed

    flat = "rank,team,score,public_score\n" + "".join(f"{i},t{i},2.0,2.0\n" for i in range(1, 11))
    (broken / "leaderboard.csv").write_text(flat)
    thresholds = gates.gate_thresholds(bad)
    assert not thresholds.passed and "not monotonic" in thresholds.reason

    constant = gates.write_constant_submission(spec, prepared, tmp_path / "constant.csv")
    from dojoflow.tasks_catalog.grading import grade_submission

    constant_score = grade_submission(spec, prepared, constant, "private").score
    trivial = gates.gate_beats_trivial(spec, prepared, {"score": constant_score, "step_times": [1.0]})
    assert not trivial.passed and "does not beat" in trivial.reason
    nothing = gates.gate_beats_trivial(spec, prepared, {"score": None, "errors": ["no submission"]})
    assert not nothing.passed and "no valid submission" in nothing.reason

    baseline = gates.run_baseline(spec, settings, gates.GateBounds(baseline_models=1))
    assert baseline["score"] is not None and baseline["step_times"]
    slow = gates.gate_step_time(baseline, gates.GateBounds(step_time_s=0.001))
    assert not slow.passed and "over the bound of 0.001 s" in slow.reason


@pytest.mark.slow
def test_labels_without_signal_are_rejected_with_the_reason(settings, tmp_path):
    from dojoflow.synth.pipeline import synthesize

    report = synthesize("cars-mpg", _options(tmp_path / "tasks", signal=0.0, family="linear"), settings)
    assert report.kept == [] and report.yield_rate == 0.0
    reasons = " ".join(report.candidates[0].reasons)
    assert "beats_trivial" in reasons or "thresholds_monotonic" in reasons, reasons
    assert not (tmp_path / "tasks" / report.candidates[0].task_id).exists()  # rejected tasks are removed


@pytest.mark.slow
def test_a_kept_task_runs_an_episode_and_a_sweep(kept, prefect_api, settings):
    from dojoflow.flows.episode import EpisodeConfig, drive_episode
    from dojoflow.flows.prefect_sweep import sweep_flow
    from dojoflow.flows.sweep_spec import parse_sweep_spec

    _, spec, _, _ = kept
    result = drive_episode(EpisodeConfig(task_id=spec.id, max_steps=3, track=False, reward_mode="sandmle_release",
                                         agent_options={"models": 1}), settings=settings)
    assert result.valid and result.leaderboard_provenance == "reference", result.errors
    rewards = [s["reward"] for s in result.trajectory if s["action"]["type"] == "execute_code"]
    assert rewards and all(r >= 0.3 for r in rewards)  # 0.2 valid + 0.1 format, plus any tier
    sweep = parse_sweep_spec({"name": "synth-sweep", "agents": [{"name": "baseline", "options": {"models": 1}}],
                              "tasks": [spec.id], "seeds": [0], "budget": {"max_steps": 3}})
    states = sweep_flow(sweep.to_dict())
    assert [s["state"] for s in states] == ["completed"]


@pytest.mark.slow
def test_micro_variant_keeps_the_seed_test_set(settings, tmp_path, monkeypatch):
    from dojoflow.synth.pipeline import synthesize
    from dojoflow.tasks_catalog.preparation import prepare_task
    from dojoflow.tasks_catalog.registry import get_task

    dest = tmp_path / "tasks"
    report = synthesize("breast-cancer", _options(dest, kind="micro"), settings)
    assert report.kept, report.candidates[0].reasons
    monkeypatch.setenv("DOJOFLOW_TASK_PATH", str(dest))
    micro = get_task(report.kept[0])
    seed = get_task("breast-cancer")
    assert micro.exposure == seed.exposure  # the rows are the seed's rows: same exposure
    assert "micro" in micro.splits and micro.tags["seed_leaderboard"] == "reference"
    mp, sp = prepare_task(micro, settings.data_dir), prepare_task(seed, settings.data_dir)
    assert (mp.answers.read_bytes(), (mp.public / "test.csv").read_bytes()) == (
        sp.answers.read_bytes(), (sp.public / "test.csv").read_bytes())
    train = pd.read_csv(mp.public / "train.csv")
    full = pd.read_csv(sp.public / "train.csv")
    assert 50 <= len(train) <= 200 and set(train["id"]) <= set(full["id"])
    assert abs(train["malignant"].mean() - full["malignant"].mean()) < 0.05  # stratified


@pytest.mark.slow
def test_an_imported_competition_seeds_both_generators(settings, tmp_path, monkeypatch):
    from test_catalog_mlebench import write_competition, write_raw

    from dojoflow.synth.pipeline import synthesize
    from dojoflow.tasks_catalog.mlebench import import_competitions

    comps = tmp_path / "competitions"
    write_competition(comps)
    monkeypatch.setenv("DOJOFLOW_MLEBENCH_RAW", str(write_raw(tmp_path / "raw")))
    monkeypatch.setenv("DOJOFLOW_TASK_PATH", str(tmp_path / "imported"))
    done, failed = import_competitions(comps, tmp_path / "imported")
    assert not failed
    report = synthesize("tiny-titanic", _options(tmp_path / "tasks"), settings)
    assert report.kept and report.dna["metric"] == "accuracy"
    assert report.dna["metric_source"].startswith("inferred")
    micro = synthesize("tiny-titanic", _options(tmp_path / "tasks", kind="micro"), settings)
    candidate = micro.candidates[0]
    # the toy competition's labels carry little signal: the gates say so instead of keeping a useless task
    assert candidate.kept or any(r.startswith(("beats_trivial", "thresholds")) for r in candidate.reasons)
    if not candidate.kept:
        return
    assert (tmp_path / "tasks" / candidate.task_id / "mlebench_grade.py").is_file()


@pytest.mark.slow
def test_sandmle_export_then_import_round_trips(kept, settings, tmp_path):
    from dojoflow.synth.sandmle import export_sandmle_task, import_sandmle_tasks
    from dojoflow.tasks_catalog.grading import grade_submission
    from dojoflow.tasks_catalog.preparation import prepare_task
    from dojoflow.tasks_catalog.spec import load_spec

    _, spec, prepared, _ = kept
    folder = export_sandmle_task(spec.id, tmp_path / "bundle")
    for name in ("description.md", "train.csv", "test.csv", "sample_submission.csv", "answer.csv", "evaluator.py"):
        assert (folder / name).is_file(), name

    def evaluate(path):
        proc = subprocess.run([sys.executable, "evaluator.py", "--submission_path", str(path)], cwd=folder,
                              capture_output=True, text=True)
        return proc.returncode, proc.stdout

    code, out = evaluate(folder / "sample_submission.csv")
    expected = grade_submission(spec, prepared, prepared.public / "sample_submission.csv", "all").score
    assert code == 0 and json.loads(out)["score"] == pytest.approx(expected, rel=1e-12)
    assert json.loads(out)["is_lower_better"] is True and "gold_threshold" in json.loads(out)
    pd.read_csv(folder / "sample_submission.csv").drop(columns=spec.submission.target_columns[0]).to_csv(
        tmp_path / "bad.csv", index=False)
    assert evaluate(tmp_path / "bad.csv")[0] != 0

    done, failed = import_sandmle_tasks(tmp_path / "bundle", tmp_path / "imported")
    assert not failed
    imported = load_spec(done[0])
    assert imported.grader.kind == "sandmle" and not imported.higher_is_better
    assert imported.exposure.source == "external"
    ip = prepare_task(imported, tmp_path / "data")
    assert gates.gate_answers_best(imported, ip).passed and gates.gate_thresholds(imported).passed
    assert grade_submission(imported, ip, ip.public / "sample_submission.csv", "private").valid

    flipped = tmp_path / "flipped"  # an evaluator that rewards error: import works, the answers gate catches it
    shutil.copytree(tmp_path / "bundle", flipped)
    evaluator = flipped / spec.id / "prepared" / "public" / "evaluator.py"
    evaluator.write_text(evaluator.read_text().replace("value = float(score(y_true, y_pred))",
                                                       "value = 100.0 - float(score(y_true, y_pred))"))
    done, failed = import_sandmle_tasks(flipped, tmp_path / "imported-flipped")
    if failed:  # its thresholds contradict its scores in a way the import itself rejects
        assert "thresholds" in next(iter(failed.values())) or "grade" in next(iter(failed.values()))
        return
    bad = load_spec(done[0])
    result = gates.gate_answers_best(bad, prepare_task(bad, tmp_path / "data"))
    assert not result.passed and "does not reward being right" in result.reason
