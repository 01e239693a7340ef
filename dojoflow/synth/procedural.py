"""The procedural generator: a known data-generating process per variant, no LLM.

A variant is a **recipe** (plain JSON): the seed task's DNA, a hidden-rule family, a re-skinned domain with
its column names, the sizes, and every parameter of the rule (weights, thresholds, effects, noise) drawn
from the variant's seed. The recipe is written into the generated task's ``prepare.py``; preparing the task
materialises it into rows with a generator seeded by the recipe, so the same recipe gives the same bytes
and the labels exist nowhere but in the prepared (hidden) answers.

Hidden-rule families. Tabular seeds: ``linear``, ``nonlinear`` (sines and squares), ``interactions``
(products of features), ``thresholds`` (step functions), ``categorical`` (per-level effects), ``missing``
(values missing at random after the label is drawn), ``label-noise`` (flipped labels / heavy-tailed noise),
``imbalance`` (a rare positive class; classification only). Seeds split by time get ``time-order`` (trend
+ season + covariates, split by date), text seeds ``text-templates`` (documents from class cue words and
neutral words), image seeds ``procedural-images`` (noisy shapes drawn as PNG files). The seed's own missing
rate and class imbalance carry over to every variant.

The latent score is ``f(z)`` on standardised features; labels are ``f(z) + noise`` turned into the seed's
target kind (a value, a binary label from a prevalence cut, one of k classes by the largest per-class
score, ordered bins for ordinal targets, several of them for multi-label / multi-output targets).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dojoflow.synth.dna import TaskDNA
from dojoflow.synth.skins import DOMAINS, NEUTRAL_WORDS

if TYPE_CHECKING:
    import pandas as pd

GENERATOR = "dojoflow-procedural"
GENERATOR_VERSION = "1"
TABULAR_FAMILIES = ("linear", "nonlinear", "interactions", "thresholds", "categorical", "missing", "label-noise",
                    "imbalance")
SHAPES = ("disc", "square", "cross", "ring", "hbar", "vbar")
IMAGE_SIZE = 16


def families_for(dna: TaskDNA) -> tuple[str, ...]:
    """The hidden-rule families that keep the seed's structure."""
    if dna.inputs == "images":
        return ("procedural-images",)
    if dna.inputs == "text":
        return ("text-templates",)
    if dna.target == "time-series":
        return ("time-order",)
    classification = dna.target in ("binary", "multiclass", "ordinal", "multilabel")
    return tuple(f for f in TABULAR_FAMILIES if classification or f != "imbalance")


def variant_seed(dna: TaskDNA, seed: int, index: int, salt: str = "") -> int:
    """A 63-bit seed for one variant, from the seed task, the user's seed, the variant index and an optional
    secret salt (see docs/synthetic.md: without a salt, anyone with the generator can regenerate the data)."""
    text = f"{GENERATOR}/{GENERATOR_VERSION}/{dna.seed_task}/{seed}/{index}/{salt}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def make_recipe(dna: TaskDNA, seed: int, index: int, *, min_rows: int = 50, max_rows: int = 200,
                n_test: int = 2000, salt: str = "", signal: float = 1.0,
                family: str | None = None) -> dict[str, Any]:
    """The recipe of variant ``index`` (deterministic in its arguments)."""
    rng = np.random.default_rng(variant_seed(dna, seed, index, salt))
    families = families_for(dna)
    family = family or families[index % len(families)]
    domain = DOMAINS[int(rng.integers(len(DOMAINS)))]
    n_train = int(rng.integers(min_rows, max_rows + 1))
    n_num = int(np.clip(dna.n_numeric, 3, 10)) if dna.inputs == "tabular" else 0
    n_cat = int(np.clip(dna.n_categorical, 1 if family == "categorical" else 0, 3)) if dna.inputs == "tabular" else 0
    numeric = [{"name": str(name), "dist": str(rng.choice(["normal", "uniform", "lognormal"])),
                "loc": round(float(rng.uniform(-5, 50)), 3), "scale": round(float(rng.uniform(0.5, 20)), 3)}
               for name in rng.permutation(domain.numeric)[:n_num]]
    cats = [domain.categorical[int(i)] for i in rng.permutation(len(domain.categorical))[:n_cat]]
    categorical = [{"name": name, "levels": list(levels),
                    "probs": [round(float(p), 4) for p in rng.dirichlet(np.full(len(levels), 2.0))]}
                   for name, levels in cats]
    n_targets = int(np.clip(dna.n_targets, 2, 5)) if dna.target in ("multilabel", "multioutput") else 1
    target_names = _target_names(dna, domain, n_targets)
    n_classes = _n_classes(dna)
    rules = [_rule(rng, family, n_num, categorical, signal) for _ in range(_n_scores(dna, n_targets, n_classes))]
    classes = _classes(dna, domain, n_classes)
    minority = float(np.clip(dna.minority_share, 0.05, 0.5))
    if family == "imbalance":
        minority = round(float(rng.uniform(0.06, 0.15)), 4)
    recipe: dict[str, Any] = {
        "generator": GENERATOR, "version": GENERATOR_VERSION, "seed_task": dna.seed_task, "seed": seed,
        "index": index, "family": family, "domain": domain.name, "entity": domain.entity,
        "data_seed": int(rng.integers(2 ** 62)), "n_train": n_train, "n_test": int(n_test),
        "target": dna.target, "inputs": dna.inputs, "metric": dna.metric, "numeric": numeric,
        "categorical": categorical, "targets": target_names, "classes": classes, "rules": rules,
        "noise": round(float(rng.uniform(0.15, 0.4)), 4),
        "missing_rate": round(float(rng.uniform(0.1, 0.25)) if family == "missing" else dna.missing_rate, 4),
        "label_noise": round(float(rng.uniform(0.08, 0.15)), 4) if family == "label-noise" else 0.0,
        "minority_share": round(minority, 4), "positive_target": dna.positive_target,
    }
    if family == "time-order":
        recipe["time"] = {"column": "date", "start": f"{int(rng.integers(2005, 2020))}-01-01",
                          "trend": round(float(rng.uniform(-0.003, 0.003)), 5),
                          "season": round(float(rng.uniform(0.5, 1.5)), 3),
                          "phase": round(float(rng.uniform(0, 2 * math.pi)), 3)}
    if family == "text-templates":
        words = list(rng.permutation(domain.words))
        per = max(2, len(words) // max(2, n_classes))
        recipe["text"] = {"column": "text", "cues": [words[i * per:(i + 1) * per] for i in range(max(2, n_classes))],
                          "cue_rate": round(float(rng.uniform(0.12, 0.25)) * signal, 4),
                          "length": [int(rng.integers(6, 10)), int(rng.integers(14, 24))]}
    if family == "procedural-images":
        recipe["images"] = {"column": "image", "dir": "images", "size": IMAGE_SIZE,
                            "shapes": [SHAPES[i] for i in rng.permutation(len(SHAPES))[:max(2, n_classes)]],
                            "noise": round(float(rng.uniform(0.1, 0.3)) / max(signal, 1e-3), 4)}
    return recipe


def _n_classes(dna: TaskDNA) -> int:
    if dna.target in ("multiclass", "ordinal"):
        return int(min(max(dna.n_classes, 3), 6))
    return 2


def _n_scores(dna: TaskDNA, n_targets: int, n_classes: int) -> int:
    if dna.target == "multiclass":
        return n_classes
    return n_targets


def _target_names(dna: TaskDNA, domain, n_targets: int) -> list[str]:
    base = domain.value_target if dna.target in ("regression", "multioutput", "time-series") else domain.label_target
    if n_targets == 1:
        return [base]
    return [f"{base}_{i + 1}" for i in range(n_targets)]


def _classes(dna: TaskDNA, domain, n_classes: int) -> list[str] | None:
    if dna.target == "multiclass":
        return list(domain.classes[:n_classes])
    if dna.target == "ordinal":
        return [str(i + 1) for i in range(n_classes)]
    if dna.target == "binary":
        return ["0", "1"]
    return None


def _rule(rng, family: str, n_num: int, categorical: list[dict], signal: float) -> dict[str, Any]:
    """The parameters of one latent score ``f(z)`` (one per target, or per class)."""
    informative = sorted(int(i) for i in rng.permutation(max(n_num, 1))[:max(1, min(n_num, int(rng.integers(2, 5))))])
    weights = [round(float(w) * signal, 4) for w in rng.normal(0, 1, len(informative)) + np.sign(
        rng.normal(0, 1, len(informative))) * 0.5] if n_num else []
    rule: dict[str, Any] = {"kind": family, "features": informative if n_num else [], "weights": weights}
    if family in ("nonlinear", "label-noise", "time-order"):
        rule["freq"] = [round(float(f), 3) for f in rng.uniform(1.0, 2.5, len(informative))]
        rule["square"] = [round(float(s) * signal, 3) for s in rng.normal(0, 0.6, len(informative))]
    if family == "interactions" and n_num >= 2:
        pairs = [sorted(int(i) for i in rng.permutation(n_num)[:2]) for _ in range(int(rng.integers(2, 4)))]
        rule["pairs"] = pairs
        rule["pair_weights"] = [round(float(w) * signal, 4) for w in rng.normal(0, 1.2, len(pairs))]
    if family == "thresholds":
        rule["cuts"] = [round(float(c), 3) for c in rng.normal(0, 0.7, len(informative))]
    rule["effects"] = [[round(float(e) * signal * (1.5 if family == "categorical" else 0.4), 4)
                        for e in rng.normal(0, 1, len(c["levels"]))] for c in categorical]
    return rule


# -- materialising a recipe ------------------------------------------------------------------------------------
def materialise(recipe: dict[str, Any], image_dir: Path | None = None, task_id: str = "") -> pd.DataFrame:
    """The labelled rows (train and test together) of ``recipe``; image files are written to ``image_dir``."""
    import pandas as pd

    rng = np.random.default_rng(int(recipe["data_seed"]))
    n = int(recipe["n_train"]) + int(recipe["n_test"])
    columns: dict[str, Any] = {}
    z = np.zeros((n, len(recipe["numeric"])))
    for j, col in enumerate(recipe["numeric"]):
        raw = _draw(rng, col, n)
        z[:, j] = (raw - raw.mean()) / (raw.std() or 1.0)
        columns[col["name"]] = np.round(raw, 4)
    codes = []
    for col in recipe["categorical"]:
        code = rng.choice(len(col["levels"]), size=n, p=np.asarray(col["probs"]) / np.sum(col["probs"]))
        codes.append(code)
        columns[col["name"]] = np.asarray(col["levels"], dtype=object)[code]
    scores = [_latent(rule, z, codes) for rule in recipe["rules"]]
    family = recipe["family"]
    if family == "time-order":
        columns, scores = _time_order(recipe, rng, n, columns, scores)
    if family == "text-templates":
        labels = _labels(recipe, rng, [rng.normal(0, 1, n)])
        columns["text"] = _documents(recipe, rng, labels)
        return _frame(recipe, columns, labels)
    if family == "procedural-images":
        labels = _labels(recipe, rng, [rng.normal(0, 1, n)] * len(recipe["rules"]))
        names = _images(recipe, rng, labels, image_dir, task_id)
        return _frame(recipe, {"image": names}, labels)
    labels = _labels(recipe, rng, scores)
    frame = _frame(recipe, columns, labels)
    if recipe["missing_rate"] > 0:  # missing at random, after the labels are drawn (imputation matters)
        for col in [c["name"] for c in recipe["numeric"]] + [c["name"] for c in recipe["categorical"]]:
            mask = rng.random(n) < recipe["missing_rate"]
            frame[col] = frame[col].where(~mask, None if frame[col].dtype == object else np.nan)
    return pd.DataFrame(frame)


def _draw(rng, col: dict, n: int):
    if col["dist"] == "uniform":
        return rng.uniform(col["loc"], col["loc"] + col["scale"], n)
    if col["dist"] == "lognormal":
        return col["loc"] + col["scale"] * rng.lognormal(0, 0.6, n)
    return rng.normal(col["loc"], col["scale"], n)


def _latent(rule: dict, z, codes: list) -> np.ndarray:
    """``f(z)`` of one rule, standardised."""
    n = z.shape[0]
    f = np.zeros(n)
    feats, weights = rule["features"], rule["weights"]
    for k, (j, w) in enumerate(zip(feats, weights, strict=False)):
        x = z[:, j]
        if "freq" in rule:
            f += w * np.sin(rule["freq"][k] * x) + rule["square"][k] * (x ** 2 - 1)
        elif "cuts" in rule:
            f += w * 2.0 * (x > rule["cuts"][k])
        elif rule["kind"] == "interactions":
            f += 0.3 * w * x
        else:
            f += w * x
    for (i, j), w in zip(rule.get("pairs", []), rule.get("pair_weights", []), strict=False):
        f += w * z[:, i] * z[:, j]
    for code, effects in zip(codes, rule["effects"], strict=False):
        f += np.asarray(effects)[code]
    std = f.std()
    return (f - f.mean()) / std if std > 0 else f


def _labels(recipe: dict, rng, scores: list) -> dict[str, Any]:
    """Target columns from the latent scores: ``f(z) + noise`` turned into the target kind."""
    n = len(scores[0])
    noise = float(recipe["noise"])
    target, names = recipe["target"], recipe["targets"]
    flip = float(recipe["label_noise"])
    if target in ("regression", "multioutput", "time-series"):
        out = {}
        for name, f in zip(names, scores, strict=False):
            eps = rng.standard_t(2, n) * 0.5 if flip else rng.normal(0, 1, n)
            y = f + noise * eps
            out[name] = np.round(20.0 * np.exp(0.4 * y) if recipe["positive_target"] else 50.0 + 10.0 * y, 4)
        return out
    if target == "multiclass":
        classes = recipe["classes"]
        prior = np.log(np.linspace(1.0, max(recipe["minority_share"] * len(classes), 0.2), len(classes)))
        logits = np.column_stack(scores) * 2.0 + prior + noise * rng.gumbel(0, 1, (n, len(classes)))
        label = logits.argmax(axis=1)
        label = _flip(rng, label, flip, len(classes))
        return {names[0]: np.asarray(classes, dtype=object)[label]}
    if target == "ordinal":
        y = scores[0] + noise * rng.normal(0, 1, n)
        k = len(recipe["classes"])
        bins = np.quantile(y, np.linspace(0, 1, k + 1)[1:-1])
        label = _flip(rng, np.searchsorted(bins, y), flip, k)
        return {names[0]: np.asarray(recipe["classes"], dtype=object)[label]}
    out = {}
    for name, f in zip(names, scores, strict=False):  # binary and multi-label
        y = f + noise * rng.logistic(0, 1, n) * 0.5
        label = (y > np.quantile(y, 1.0 - recipe["minority_share"])).astype(int)
        out[name] = _flip(rng, label, flip, 2)
    return out


def _flip(rng, label, rate: float, k: int):
    if rate <= 0:
        return label
    mask = rng.random(len(label)) < rate
    return np.where(mask, rng.integers(0, k, len(label)), label)


def _frame(recipe: dict, columns: dict, labels: dict) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(columns)
    for name, values in labels.items():
        frame[name] = values
    return frame


def _time_order(recipe: dict, rng, n: int, columns: dict, scores: list):
    import pandas as pd

    spec = recipe["time"]
    days = np.arange(n)
    dates = pd.date_range(spec["start"], periods=n, freq="D")
    season = spec["season"] * np.sin(2 * np.pi * dates.day_of_year.to_numpy() / 365.25 + spec["phase"])
    trend = spec["trend"] * days
    out = {spec["column"]: dates.strftime("%Y-%m-%d").to_numpy(), **columns}
    return out, [f * 0.6 + season + trend for f in scores]


def _documents(recipe: dict, rng, labels: dict) -> list[str]:
    spec = recipe["text"]
    label_col = np.asarray(labels[recipe["targets"][0]])
    index = {c: i for i, c in enumerate(recipe["classes"] or ["0", "1"])}
    vocab = list(NEUTRAL_WORDS) + [w for cue in spec["cues"] for w in cue]
    low, high = spec["length"]
    docs = []
    for value in label_col:
        cues = spec["cues"][index.get(str(value), int(value) if str(value).isdigit() else 0) % len(spec["cues"])]
        length = int(rng.integers(low, high + 1))
        words = [cues[int(rng.integers(len(cues)))] if rng.random() < spec["cue_rate"]
                 else vocab[int(rng.integers(len(vocab)))] for _ in range(length)]
        docs.append(" ".join(words))
    return docs


def _images(recipe: dict, rng, labels: dict, image_dir: Path | None, task_id: str) -> list[str]:
    from PIL import Image

    from dojoflow.tasks_catalog.images import image_name

    spec = recipe["images"]
    classes = recipe["classes"] or ["0", "1"]
    index = {c: i for i, c in enumerate(classes)}
    size = int(spec["size"])
    yy, xx = np.mgrid[0:size, 0:size]
    names = []
    for i, value in enumerate(labels[recipe["targets"][0]]):
        shape = spec["shapes"][index.get(str(value), 0) % len(spec["shapes"])]
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        r = rng.uniform(size * 0.15, size * 0.3)
        image = _shape_mask(shape, yy, xx, cy, cx, r).astype(float)
        image = np.clip(image * rng.uniform(0.6, 1.0) + rng.normal(0, spec["noise"], image.shape), 0, 1)
        name = image_name(task_id or recipe["seed_task"], i)
        if image_dir is not None:
            Image.fromarray((image * 255).astype(np.uint8), mode="L").save(Path(image_dir) / name, optimize=False)
        names.append(name)
    return names


def _shape_mask(shape: str, yy, xx, cy: float, cx: float, r: float):
    d = np.hypot(yy - cy, xx - cx)
    if shape == "disc":
        return d <= r
    if shape == "ring":
        return (d <= r) & (d >= r * 0.55)
    if shape == "square":
        return (abs(yy - cy) <= r * 0.8) & (abs(xx - cx) <= r * 0.8)
    if shape == "cross":
        return ((abs(yy - cy) <= r * 0.25) & (abs(xx - cx) <= r)) | ((abs(xx - cx) <= r * 0.25) & (abs(yy - cy) <= r))
    if shape == "hbar":
        return (abs(yy - cy) <= r * 0.3) & (abs(xx - cx) <= r * 1.2)
    return (abs(xx - cx) <= r * 0.3) & (abs(yy - cy) <= r * 1.2)


def prepare_from_recipe(recipe: dict[str, Any], spec, public_dir: Path, private_dir: Path) -> None:
    """``prepare()`` of a procedurally generated task: materialise the recipe, then the standard split."""
    from dojoflow.tasks_catalog.preparation import write_standard_split

    image_dir = None
    if recipe["family"] == "procedural-images":
        image_dir = Path(public_dir) / recipe["images"]["dir"]
        image_dir.mkdir(parents=True, exist_ok=True)
    frame = materialise(recipe, image_dir, spec.id)
    write_standard_split(frame, spec, Path(public_dir), Path(private_dir))


def test_fraction(recipe: dict[str, Any]) -> float:
    """The spec's ``split.test_fraction`` that leaves exactly ``n_train`` training rows."""
    n = recipe["n_train"] + recipe["n_test"]
    if recipe["family"] == "time-order":
        return recipe["n_test"] / n  # time split: round(n * fraction) test rows
    return (recipe["n_test"] - 0.5) / n  # random split: ceil(n * fraction) test rows
