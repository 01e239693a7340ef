"""Writing image-classification tasks: arrays of grey-level images to PNG files with random file names.

A task with ``inputs: {kind: images, column: image, dir: images}`` ships its pictures as files under
``public/images/`` and names them in the ``image`` column of ``train.csv`` / ``test.csv``. File names are
hashes of the task id and the source row, so they carry neither the label nor the split.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def image_name(task_id: str, index: int) -> str:
    """A stable, uninformative file name for source row ``index`` of a task."""
    return hashlib.sha256(f"{task_id}/{index}".encode()).hexdigest()[:16] + ".png"


def _distort(image: np.ndarray, size: int, rng: np.random.RandomState) -> np.ndarray:
    """Upscale to ``size`` x ``size``, then a random rotation, scaling and shift, plus pixel noise."""
    import numpy as np
    from PIL import Image

    big = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    angle = rng.uniform(-25, 25)
    scale = rng.uniform(0.75, 1.1)
    dx, dy = rng.uniform(-4, 4, size=2)
    theta = np.deg2rad(angle)
    cos, sin = np.cos(theta) / scale, np.sin(theta) / scale
    cx = cy = (size - 1) / 2
    # inverse affine map (output pixel -> input pixel) around the centre
    a, b = cos, sin
    d, e = -sin, cos
    c = cx - a * (cx + dx) - b * (cy + dy)
    f = cy - d * (cx + dx) - e * (cy + dy)
    moved = np.asarray(big.transform((size, size), Image.Transform.AFFINE, (a, b, c, d, e, f),
                                     Image.Resampling.BILINEAR), dtype=np.float64)
    noisy = moved + rng.normal(0, 20, size=moved.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def write_digit_images(images: np.ndarray, folder: Path, task_id: str, size: int = 8, distort: bool = False,
                       seed: int = 0) -> pd.DataFrame:
    """Write ``images`` (n x 8 x 8, values 0-16) as PNG files under ``folder``; return a frame of file names.

    With ``distort`` each image is upscaled to ``size`` pixels and randomly rotated, scaled, shifted and
    noised (seeded: the same files every time).
    """
    import numpy as np
    import pandas as pd
    from PIL import Image

    from dojoflow.tasks_catalog.preparation import report_progress

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    names = []
    for i, image in enumerate(images):
        grey = np.clip(np.round(np.asarray(image, dtype=float) * 255.0 / 16.0), 0, 255).astype(np.uint8)
        if distort:
            grey = _distort(grey, size, rng)
        elif grey.shape != (size, size):
            grey = np.asarray(Image.fromarray(grey).resize((size, size), Image.Resampling.BILINEAR))
        name = image_name(task_id, i)
        Image.fromarray(grey, mode="L").save(folder / name, optimize=False)
        names.append(name)
        if i % 200 == 0:
            report_progress(i, len(images), f"writing images ({i}/{len(images)})")
    return pd.DataFrame({"image": names})
