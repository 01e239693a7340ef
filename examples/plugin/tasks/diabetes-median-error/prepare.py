"""Diabetes (Efron et al. 2004) from scikit-learn's bundled copy: no download."""

from pathlib import Path

from dojoflow.api import write_standard_split


def prepare(spec, public_dir: Path, private_dir: Path) -> None:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    frame["progression"] = frame.pop("target").astype(float)
    write_standard_split(frame, spec, public_dir, private_dir)
