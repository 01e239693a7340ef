"""Micro variants of real tasks: the seed's data with its training rows subsampled to 50-200 rows.

The test set (and its public/private split) is the seed's, so a micro variant is graded exactly as its seed
is; only the training data shrinks, which is what makes a step cheap (SandMLE's finding). Sampling is
stratified on the target for single-target classification; for a task split by time the most recent
training rows are kept (a random subsample would break the series). The leaderboard is recomputed: a
reference population trained on the micro rows (a seed's human leaderboard was earned on the full data).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from dojoflow.errors import SynthesisError
from dojoflow.tasks_catalog.kinds import task_kind
from dojoflow.tasks_catalog.spec import TaskSpec

MICRO_GENERATOR = "dojoflow-micro"
MICRO_VERSION = "1"


def make_plan(seed_spec: TaskSpec, seed: int, index: int, n_seed_train: int, *, min_rows: int = 50,
              max_rows: int = 200) -> dict[str, Any]:
    """How variant ``index`` subsamples the seed (deterministic in its arguments)."""
    import numpy as np

    digest = hashlib.sha256(f"{MICRO_GENERATOR}/{MICRO_VERSION}/{seed_spec.id}/{seed}/{index}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    high = min(max_rows, n_seed_train)
    if high < min_rows:
        raise SynthesisError(f"task '{seed_spec.id}' has {n_seed_train} training rows, fewer than the "
                             f"{min_rows} a micro variant needs (lower --min-rows)")
    time_split = seed_spec.split.method == "time"
    stratify = (not time_split and task_kind(seed_spec.task_type).stratify
                and len(seed_spec.submission.target_columns) == 1)
    return {"generator": MICRO_GENERATOR, "version": MICRO_VERSION, "seed_task": seed_spec.id, "seed": seed,
            "index": index, "n_train": int(rng.integers(min_rows, high + 1)),
            "sample_seed": int(rng.integers(2 ** 31)),
            "method": "most recent rows" if time_split else "stratified" if stratify else "random"}


def prepare_micro(plan: dict[str, Any], spec: TaskSpec, public_dir: Path, private_dir: Path) -> None:
    """``prepare()`` of a micro variant: prepare the seed (cached), subsample its training rows, keep the rest."""
    import pandas as pd

    from dojoflow.config import get_settings
    from dojoflow.tasks_catalog.preparation import prepare_task
    from dojoflow.tasks_catalog.registry import get_task

    seed_spec = get_task(plan["seed_task"])
    seed = prepare_task(seed_spec, get_settings().data_dir)
    for item in seed.public.iterdir():
        if item.name in ("train.csv", "description.md"):
            continue
        _link_tree(item, Path(public_dir) / item.name)
    for item in seed.private.iterdir():
        _link_tree(item, Path(private_dir) / item.name)
    train = pd.read_csv(seed.public / "train.csv", dtype=str, keep_default_na=False)
    _subsample(train, plan, seed_spec).to_csv(Path(public_dir) / "train.csv", index=False)


def _subsample(train, plan: dict[str, Any], seed_spec: TaskSpec):
    n = int(plan["n_train"])
    if plan["method"] == "most recent rows":
        return train.iloc[-n:]
    if plan["method"] == "stratified":
        from sklearn.model_selection import train_test_split

        target = train[seed_spec.submission.target_columns[0]]
        counts = target.value_counts()
        if (counts >= 2).all() and counts.size <= n:
            kept, _ = train_test_split(train, train_size=n, random_state=plan["sample_seed"], stratify=target)
            return kept.sort_index()
    return train.sample(n=n, random_state=plan["sample_seed"]).sort_index()


def _link_tree(source: Path, dest: Path) -> None:
    """Hard-link (or copy, across file systems) a file or folder of the seed's prepared data."""
    if source.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        for child in source.iterdir():
            _link_tree(child, dest / child.name)
        return
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)
