"""An imported competition's preparation code runs sandboxed: only its raw data view and outputs are writable.

The competition is written in MLE-bench's format (as in test_catalog_mlebench.py); its ``prepare.py`` is an
adversary that extracts its archive into the raw folder (as many MLE-bench competitions do), then tries to
write everywhere else, to alter the user's raw files and to reach the network, and records what happened.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dojoflow.infra.sandbox.bwrap import bwrap_available
from dojoflow.tasks_catalog.mlebench import import_competitions
from dojoflow.tasks_catalog.preparation import prepare_task
from dojoflow.tasks_catalog.registry import get_task

pytestmark = pytest.mark.skipif(not bwrap_available()[0], reason=f"needs bubblewrap: {bwrap_available()[1]}")

PREPARE = '''
import json
import socket
import zipfile
from pathlib import Path

import pandas as pd

TARGETS = {targets!r}


def attempt(fn):
    try:
        fn()
        return "done"
    except OSError as exc:
        return type(exc).__name__


def prepare(raw: Path, public: Path, private: Path):
    with zipfile.ZipFile(raw / "train.zip") as archive:  # extract into the raw folder, as MLE-bench does
        archive.extractall(raw)
    frame = pd.read_csv(raw / "train.csv")
    report = {{"raw": str(raw), "extracted": (raw / "train.csv").is_file()}}
    for name, target in TARGETS.items():
        report[name] = attempt(lambda: Path(target).write_text("x"))
    report["alter_raw_archive"] = attempt(lambda: (raw / "train.zip").write_bytes(b"tampered"))
    report["read_home"] = attempt(lambda: list(Path(TARGETS["home"]).parent.iterdir()))
    report["network"] = attempt(lambda: socket.create_connection(("1.1.1.1", 80), timeout=2))
    test = frame.iloc[::3]
    train = frame.drop(test.index)
    train.to_csv(public / "train.csv", index=False)
    test.drop(columns=["Transported"]).to_csv(public / "test.csv", index=False)
    sample = test[["PassengerId", "Transported"]].copy()
    sample["Transported"] = False
    sample.to_csv(public / "sample_submission.csv", index=False)
    test.to_csv(private / "test.csv", index=False)
    (public / "attack.json").write_text(json.dumps(report))
'''

GRADE = '''
def grade(submission, answers):
    return float((submission["Transported"].astype(str).values == answers["Transported"].astype(str).values).mean())
'''


def write_competition(root: Path, cid: str, targets: dict[str, str]) -> None:
    folder = root / cid
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "id": cid, "name": "Hostile", "competition_type": "simple", "awards_medals": True,
        "dataset": {"answers": f"{cid}/prepared/private/test.csv",
                    "sample_submission": f"{cid}/prepared/public/sample_submission.csv"},
        "grader": {"name": "accuracy", "grade_fn": f"mlebench.competitions.{cid}.grade:grade"},
    }))
    (folder / "description.md").write_text("# Hostile\n")
    (folder / "prepare.py").write_text(PREPARE.format(targets=targets))
    (folder / "grade.py").write_text(GRADE)
    rows = ["teamId,score"] + [f"{i},{0.9 - 0.01 * i:.3f}" for i in range(20)]
    (folder / "leaderboard.csv").write_text("\n".join(rows) + "\n")


def test_preparation_of_an_imported_competition_writes_only_its_raw_view_and_outputs(tmp_path, monkeypatch):
    home, raw_root, cid = tmp_path / "home", tmp_path / "raw", "hostile-prep"
    monkeypatch.setenv("DOJOFLOW_HOME", str(home))
    raw = raw_root / cid
    raw.mkdir(parents=True)
    n = 60
    csv = pd.DataFrame({"PassengerId": [f"{i:04d}" for i in range(n)], "Age": range(n),
                        "Transported": [i % 2 == 0 for i in range(n)]}).to_csv(index=False)
    with zipfile.ZipFile(raw / "train.zip", "w") as archive:
        archive.writestr("train.csv", csv)
    archive_bytes = (raw / "train.zip").read_bytes()
    targets = {"original_raw": str(raw / "evil.txt"), "home": str(home / "evil.txt"),
               "usr": "/usr/evil.txt", "root": "/root/evil.txt",
               "package": str(Path(__import__("dojoflow").__file__).parent / "evil.txt")}
    write_competition(tmp_path / "competitions", cid, targets)
    monkeypatch.setenv("DOJOFLOW_MLEBENCH_RAW", str(raw_root))
    # the import runs the competition's preparation once (to learn the submission columns), sandboxed too
    done, failed = import_competitions(tmp_path / "competitions")
    assert failed == {} and len(done) == 1
    assert sorted(p.name for p in raw.iterdir()) == ["train.zip"] and not Path(targets["home"]).exists()

    prepared = prepare_task(get_task(cid), home / "data")

    report = json.loads((prepared.public / "attack.json").read_text())
    assert report["extracted"] and report["raw"] == "/prepare/raw"  # the writable view, not the user's folder
    for name in targets:
        assert report[name] != "done", f"the preparation wrote {targets[name]}"
    assert report["alter_raw_archive"] != "done"
    assert report["read_home"] != "done"
    assert report["network"] != "done"
    assert sorted(p.name for p in raw.iterdir()) == ["train.zip"]  # nothing extracted into the user's download
    assert (raw / "train.zip").read_bytes() == archive_bytes
    assert not any(Path(t).exists() for t in targets.values())
    owners = {p.stat().st_uid for p in prepared.root.rglob("*")}
    assert owners == {os.getuid()}  # the cache belongs to the harness, not to the sandbox user
    assert not (prepared.root / "tmp").exists()
