"""A small MLE-bench checkout written by the tests: a ``mlebench`` library of our own (the modules competition
code imports: ``grade_helpers``, ``utils``, ``competitions/utils``) and competition folders in the real
layouts of MLE-bench's 82 (studied from a copy; none of its code is here):

- ``leafy``: ``from .classes import CLASSES`` in prepare.py and grade.py, a multi-class log loss whose
  perfect submission scores 1.1e-15 (0.0 once rounded, as MLE-bench does);
- ``privsample``: the sample submission in ``private/`` (as text-normalization's config says) and the agents'
  copy zipped in ``public/`` (``en_sample_submission_2.csv.zip``), tables named ``en_train.csv``/``en_test.csv``;
- ``insults``: the id (``Comment``) is not the first column of the sample (``Insult, Date, Comment``);
- ``images``: image folders, a labels table, ``from .dogs import DOGS`` in prepare.py only;
- ``zipped``: the training data as a zip archive (extracted by ``mlebench.utils.extract``);
- ``pizza``: JSON (``train.json``) and JSON-lines answers (``private/test.jsonl``);
- ``tables``: several tables (train, test, stores, oil) and an RMSE grader that, like nomad2018's, does not
  check the ids (duplicates pass).
"""

from __future__ import annotations

import textwrap
import zipfile
from pathlib import Path

import yaml

LIBRARY = {
    "__init__.py": "",
    "grade_helpers.py": '''
        class InvalidSubmissionError(Exception):
            """The submission cannot be graded."""
        ''',
    "utils.py": '''
        import logging
        import zipfile
        from pathlib import Path

        import pandas as pd


        def get_logger(name):
            return logging.getLogger(name)


        def read_csv(*args, **kwargs):
            return pd.read_csv(*args, **kwargs)


        def extract(compressed: Path, to: Path, recursive: bool = False) -> None:
            with zipfile.ZipFile(compressed) as archive:
                archive.extractall(to)
        ''',
    "metrics.py": "",
    "competitions/__init__.py": "",
    "competitions/utils.py": '''
        from mlebench.grade_helpers import InvalidSubmissionError


        def check_lengths(submission, answers):
            if len(submission) != len(answers):
                raise InvalidSubmissionError(f"{len(submission)} rows, expected {len(answers)}")
        ''',
}

SPLIT = '''
def split(frame, fraction=0.3):
    test = frame.iloc[::3]
    return frame.drop(test.index), test
'''

COMPETITIONS: dict[str, dict] = {
    "leafy": {
        "lower": True, "best": [0.0] * 5,
        "files": {
            "classes.py": 'CLASSES = ["acer", "betula", "quercus"]\n',
            "prepare.py": '''
                import pandas as pd

                from .classes import CLASSES
                from .helpers import split


                def prepare(raw, public, private):
                    frame = pd.read_csv(raw / "train.csv")
                    train, test = split(frame)
                    train.to_csv(public / "train.csv", index=False)
                    test.drop(columns=["species"]).to_csv(public / "test.csv", index=False)
                    answers = pd.DataFrame({"id": test["id"]})
                    for name in CLASSES:
                        answers[name] = (test["species"] == name).astype(float)
                    answers.to_csv(private / "test.csv", index=False)
                    sample = answers.copy()
                    sample[CLASSES] = 1 / len(CLASSES)
                    sample.to_csv(public / "sample_submission.csv", index=False)
                ''',
            "helpers.py": SPLIT,
            "grade.py": '''
                import numpy as np

                from mlebench.competitions.utils import check_lengths
                from mlebench.grade_helpers import InvalidSubmissionError

                from .classes import CLASSES


                def grade(submission, answers):
                    check_lengths(submission, answers)
                    missing = [c for c in ["id", *CLASSES] if c not in submission.columns]
                    if missing:
                        raise InvalidSubmissionError(f"missing columns {missing}")
                    submission = submission.sort_values("id").reset_index(drop=True)
                    answers = answers.sort_values("id").reset_index(drop=True)
                    p = np.clip(submission[CLASSES].to_numpy(float), 1e-15, 1 - 1e-15)
                    p = p / p.sum(axis=1, keepdims=True)
                    y = answers[CLASSES].to_numpy(float)
                    return float(-(y * np.log(p)).sum(axis=1).mean())
                ''',
        },
        "sample": "public/sample_submission.csv", "answers": "private/test.csv",
    },
    "privsample": {
        "lower": False, "best": [1.0] * 3,
        "files": {
            "prepare.py": '''
                import pandas as pd


                def prepare(raw, public, private):
                    frame = pd.read_csv(raw / "en_train.csv")
                    train, test = frame.iloc[:40], frame.iloc[40:]
                    train.to_csv(public / "en_train.csv", index=False)
                    test.drop(columns=["after"]).to_csv(public / "en_test.csv", index=False)
                    test[["id", "after"]].to_csv(private / "answers.csv", index=False)
                    sample = test.assign(after=test["before"])[["id", "after"]]
                    sample.to_csv(private / "sample_submission.csv", index=False)
                    # the agents' copy, zipped, as the real competition ships it (en_sample_submission_2.csv.zip)
                    sample.to_csv(public / "en_sample_submission_2.csv.zip", index=False,
                                  compression={"method": "zip", "archive_name": "en_sample_submission_2.csv"})
                ''',
            "grade.py": '''
                from mlebench.grade_helpers import InvalidSubmissionError


                def grade(submission, answers):
                    merged = answers.merge(submission, on="id", how="left", suffixes=("", "_pred"))
                    if merged["after_pred"].isna().any():
                        raise InvalidSubmissionError("missing predictions")
                    return float((merged["after"] == merged["after_pred"]).mean())
                ''',
        },
        "sample": "private/sample_submission.csv", "answers": "private/answers.csv",
    },
    "insults": {
        "lower": False, "best": [0.9] * 3,
        "files": {
            "prepare.py": '''
                import pandas as pd

                from .helpers import split


                def prepare(raw, public, private):
                    frame = pd.read_csv(raw / "train.csv")
                    train, test = split(frame)
                    train.to_csv(public / "train.csv", index=False)
                    test.drop(columns=["Insult"]).to_csv(public / "test.csv", index=False)
                    test.assign(Usage="PrivateTest").to_csv(private / "test.csv", index=False)
                    test.assign(Insult=0)[["Insult", "Date", "Comment"]].to_csv(
                        public / "sample_submission_null.csv", index=False)
                ''',
            "helpers.py": SPLIT,
            "grade.py": '''
                from sklearn.metrics import roc_auc_score

                from mlebench.grade_helpers import InvalidSubmissionError


                def grade(submission, answers):
                    if len(submission) != len(answers) or "Insult" not in submission.columns:
                        raise InvalidSubmissionError("bad submission")
                    submission = submission.sort_values("Comment")
                    answers = answers.sort_values("Comment")
                    if (submission["Comment"].to_numpy() != answers["Comment"].to_numpy()).any():
                        raise InvalidSubmissionError("comments differ")
                    return roc_auc_score(answers["Insult"], submission["Insult"])
                ''',
        },
        "sample": "public/sample_submission_null.csv", "answers": "private/test.csv",
    },
    "images": {
        "lower": True, "best": [0.1] * 3,
        "files": {
            "dogs.py": 'DOGS = ["beagle", "collie"]\n',
            "prepare.py": '''
                import shutil

                import pandas as pd

                from .dogs import DOGS


                def prepare(raw, public, private):
                    labels = pd.read_csv(raw / "labels.csv")
                    train, test = labels.iloc[:8], labels.iloc[8:]
                    for folder, part in (("train", train), ("test", test)):
                        (public / folder).mkdir()
                        for name in part["id"]:
                            shutil.copyfile(raw / "train" / f"{name}.png", public / folder / f"{name}.png")
                    train.to_csv(public / "labels.csv", index=False)
                    answers = pd.DataFrame({"id": test["id"]})
                    for dog in DOGS:
                        answers[dog] = (test["breed"] == dog).astype(float)
                    answers.to_csv(private / "test.csv", index=False)
                    answers.assign(**{d: 0.5 for d in DOGS}).to_csv(public / "sample_submission.csv", index=False)
                ''',
            "grade.py": '''
                import numpy as np

                from mlebench.grade_helpers import InvalidSubmissionError


                def grade(submission, answers):
                    if len(submission) != len(answers):
                        raise InvalidSubmissionError("lengths differ")
                    classes = [c for c in answers.columns if c != "id"]
                    submission = submission.sort_values("id")
                    answers = answers.sort_values("id")
                    p = np.clip(submission[classes].to_numpy(float), 1e-15, 1 - 1e-15)
                    return float(-(answers[classes].to_numpy(float) * np.log(p)).sum(axis=1).mean())
                ''',
        },
        "sample": "public/sample_submission.csv", "answers": "private/test.csv",
    },
    "zipped": {
        "lower": True, "best": [0.5] * 3,
        "files": {
            "prepare.py": '''
                import shutil
                import zipfile

                import pandas as pd

                from mlebench.utils import extract


                def prepare(raw, public, private):
                    extract(raw / "train.zip", raw)
                    frame = pd.read_csv(raw / "train" / "data.csv")
                    train, test = frame.iloc[:30], frame.iloc[30:]
                    (raw / "out").mkdir(exist_ok=True)
                    train.to_csv(raw / "out" / "train.csv", index=False)
                    with zipfile.ZipFile(public / "train.zip", "w") as archive:
                        archive.write(raw / "out" / "train.csv", "train.csv")
                    test.drop(columns=["y"]).to_csv(public / "test_features.csv", index=False)
                    test[["key", "y"]].to_csv(private / "answers.csv", index=False)
                    test[["key"]].assign(y=0.0).to_csv(public / "sample_submission.csv", index=False)
                    shutil.rmtree(raw / "out")
                ''',
            "grade.py": '''
                import numpy as np

                from mlebench.grade_helpers import InvalidSubmissionError


                def grade(submission, answers):
                    merged = answers.merge(submission, on="key", suffixes=("", "_pred"))
                    if len(merged) != len(answers):
                        raise InvalidSubmissionError("keys differ")
                    return float(np.sqrt(((merged["y"] - merged["y_pred"]) ** 2).mean()))
                ''',
        },
        "sample": "public/sample_submission.csv", "answers": "private/answers.csv",
    },
    "pizza": {
        "lower": False, "best": [0.8] * 3,
        "files": {
            "prepare.py": '''
                import json

                import pandas as pd


                def prepare(raw, public, private):
                    records = json.loads((raw / "train.json").read_text())
                    train, test = records[:30], records[30:]
                    (public / "train.json").write_text(json.dumps(train))
                    (public / "test.json").write_text(json.dumps([
                        {k: v for k, v in r.items() if k != "requester_received_pizza"} for r in test]))
                    with open(private / "test.jsonl", "w") as fh:
                        for r in test:
                            fh.write(json.dumps({"request_id": r["request_id"],
                                                 "requester_received_pizza": r["requester_received_pizza"]}) + "\\n")
                    pd.DataFrame({"request_id": [r["request_id"] for r in test],
                                  "requester_received_pizza": 0}).to_csv(public / "sampleSubmission.csv", index=False)
                ''',
            "grade.py": '''
                import pandas as pd
                from sklearn.metrics import roc_auc_score

                from mlebench.grade_helpers import InvalidSubmissionError


                def grade(submission, answers):
                    answers = pd.DataFrame(answers)  # JSON lines: a list of dicts
                    merged = answers.merge(submission, on="request_id", suffixes=("", "_pred"))
                    if len(merged) != len(answers):
                        raise InvalidSubmissionError("ids differ")
                    return roc_auc_score(merged["requester_received_pizza"].astype(int),
                                         merged["requester_received_pizza_pred"])
                ''',
        },
        "sample": "public/sampleSubmission.csv", "answers": "private/test.jsonl",
    },
    "tables": {
        "lower": True, "best": [1.0, 1.5, 2.0, 2.5, 2.83377, 2.9, 3.0, 3.5, 4.0, 4.5],
        "files": {
            "prepare.py": '''
                import shutil

                import pandas as pd

                from .helpers import split


                def prepare(raw, public, private):
                    frame = pd.read_csv(raw / "train.csv")
                    train, test = split(frame)
                    train.to_csv(public / "train.csv", index=False)
                    test.drop(columns=["sales"]).to_csv(public / "test.csv", index=False)
                    for name in ("stores.csv", "oil.csv"):
                        shutil.copyfile(raw / name, public / name)
                    test[["id", "sales"]].to_csv(private / "test.csv", index=False)
                    test[["id"]].assign(sales=0.0).to_csv(public / "sample_submission.csv", index=False)
                ''',
            "helpers.py": SPLIT,
            "grade.py": '''
                import numpy as np

                from mlebench.grade_helpers import InvalidSubmissionError


                def grade(submission, answers):
                    if len(submission) != len(answers) or "sales" not in submission.columns:
                        raise InvalidSubmissionError("bad submission")
                    submission = submission.sort_values("id")
                    answers = answers.sort_values("id")
                    error = answers["sales"].to_numpy(float) - submission["sales"].to_numpy(float)
                    return float(np.sqrt(np.mean(error ** 2)))
                ''',
        },
        "sample": "public/sample_submission.csv", "answers": "private/test.csv",
    },
}
LAYOUTS = tuple(COMPETITIONS)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def leaderboard(best: list[float], lower: bool, teams: int = 30) -> str:
    """An MLE-bench leaderboard: ``best`` first, then worse scores (in the board's direction)."""
    scores = list(best)
    while len(scores) < teams:
        scores.append(scores[-1] + (0.1 if lower else -0.01))
    rows = ["scoreNullable,teamId,hasTeamName,submissionDate,score,hasScore"]
    rows += [f"{s:.5f},{1000 + i},True,2022-01-01 00:00:00,{s:.5f},True" for i, s in enumerate(scores)]
    return "\n".join(rows) + "\n"


def write_checkout(root: Path, ids: tuple[str, ...] = LAYOUTS) -> Path:
    """``root/mlebench/competitions/<id>/`` for each of ``ids`` with the library beside; returns the
    competitions folder."""
    library = root / "mlebench"
    for name, text in LIBRARY.items():
        _write(library / name, text)
    for cid in ids:
        comp = COMPETITIONS[cid]
        folder = library / "competitions" / cid
        for name, text in comp["files"].items():
            _write(folder / name, text)
        (folder / "config.yaml").write_text(yaml.safe_dump({
            "id": cid, "name": cid.title(), "competition_type": "simple", "awards_medals": True, "prizes": None,
            "description": f"mlebench/competitions/{cid}/description.md",
            "dataset": {"answers": f"{cid}/prepared/{comp['answers']}",
                        "sample_submission": f"{cid}/prepared/{comp['sample']}"},
            "grader": {"name": "metric", "grade_fn": f"mlebench.competitions.{cid}.grade:grade"},
            "preparer": f"mlebench.competitions.{cid}.prepare:prepare",
        }))
        (folder / "description.md").write_text(f"# {cid}\n\nA test competition in a real MLE-bench layout.\n")
        (folder / "leaderboard.csv").write_text(leaderboard(comp["best"], comp["lower"]))
    return library / "competitions"


def write_raw(root: Path, ids: tuple[str, ...] = LAYOUTS) -> Path:
    """The raw "Kaggle download" of each competition under ``root/<id>/``."""
    import json

    import numpy as np
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(0)
    for cid in ids:
        raw = root / cid
        raw.mkdir(parents=True)
        if cid == "leafy":
            species = np.array(["acer", "betula", "quercus"])[rng.integers(0, 3, 60)]
            pd.DataFrame({"id": range(1, 61), "species": species, "f1": rng.normal(size=60),
                          "f2": rng.normal(size=60)}).to_csv(raw / "train.csv", index=False)
        elif cid == "privsample":
            words = [f"w{i}" for i in range(60)]
            pd.DataFrame({"id": [f"0_{i}" for i in range(60)], "before": words,
                          "after": [w.upper() for w in words]}).to_csv(raw / "en_train.csv", index=False)
        elif cid == "insults":
            pd.DataFrame({"Insult": rng.integers(0, 2, 60),
                          "Date": [f"201206{i:02d}000000Z" if i % 5 else None for i in range(60)],
                          "Comment": [f'"comment number {i}"' for i in range(60)]}).to_csv(raw / "train.csv",
                                                                                       index=False)
        elif cid == "images":
            (raw / "train").mkdir()
            names = [f"{i:032x}" for i in range(12)]
            for name in names:
                Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(raw / "train" / f"{name}.png")
            pd.DataFrame({"id": names, "breed": ["beagle", "collie"] * 6}).to_csv(raw / "labels.csv", index=False)
        elif cid == "zipped":
            frame = pd.DataFrame({"key": [f"2015-01-{i % 28 + 1:02d} {i}" for i in range(45)],
                                  "x": rng.normal(size=45), "y": rng.normal(size=45)})
            with zipfile.ZipFile(raw / "train.zip", "w") as archive:
                archive.writestr("train/data.csv", frame.to_csv(index=False))
        elif cid == "pizza":
            records = [{"request_id": f"t3_{i}", "request_text": f"text {i}", "requester_received_pizza": bool(i % 3)}
                       for i in range(45)]
            (raw / "train.json").write_text(json.dumps(records))
        elif cid == "tables":
            pd.DataFrame({"id": range(60), "store_nbr": rng.integers(1, 4, 60), "onpromotion": rng.integers(0, 5, 60),
                          "sales": rng.normal(10, 2, 60)}).to_csv(raw / "train.csv", index=False)
            pd.DataFrame({"store_nbr": [1, 2, 3], "city": ["a", "b", "c"]}).to_csv(raw / "stores.csv", index=False)
            pd.DataFrame({"date": ["2017-01-01"], "dcoilwtico": [52.3]}).to_csv(raw / "oil.csv", index=False)
    return root
