"""What a task's public folder holds, described for the first observation, whatever its layout.

Built-in tasks have ``train.csv``, ``test.csv`` and ``sample_submission.csv``; imported competitions have
whatever their preparation wrote: image or audio folders, zip archives, JSON lines, several tables, a sample
submission under another name. :func:`describe_folder` reads no file name it was not given: it walks the
folder and writes a file tree with sizes and counts (large folders collapsed to a count per file type), the
schema and first rows of each table (CSV, TSV, Parquet, JSON, JSON lines), a summary of each media folder
(count, formats, total size, the size of a few images) and the listing of each archive. The text is bounded
(:data:`MAX_CHARS`) so a folder of a million files makes a short observation.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections import Counter
from pathlib import Path

MAX_CHARS = 12_000
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".json", ".jsonl")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".dcm")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".aif", ".aiff", ".m4a")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".7z")
LISTED_FILES = 12  # a folder with more files is summarised by type
HEAD_ROWS = 3


def human_size(size: float) -> str:
    """Bytes in binary units: ``1536`` -> ``1.5 KiB`` (also the CLI's sizes)."""
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _tree(root: Path, folder: Path, depth: int, lines: list[str]) -> None:
    entries = sorted(folder.iterdir(), key=lambda p: (p.is_file(), p.name))
    files = [p for p in entries if p.is_file()]
    indent = "  " * depth
    for sub in (p for p in entries if p.is_dir()):
        inner = [p for p in sub.rglob("*") if p.is_file()]
        size = human_size(sum(p.stat().st_size for p in inner))
        lines.append(f"{indent}{sub.relative_to(root)}/ ({len(inner)} files, {size})")
        if depth < 3:
            _tree(root, sub, depth + 1, lines)
    if len(files) <= LISTED_FILES:
        lines += [f"{indent}{p.relative_to(root)} ({human_size(p.stat().st_size)})" for p in files]
        return
    by_type = Counter(p.suffix.lower() or "(no suffix)" for p in files)
    shown = ", ".join(f"{n} {suffix}" for suffix, n in by_type.most_common(6))
    lines.append(f"{indent}{len(files)} files ({shown}), e.g. {', '.join(p.name for p in files[:3])}")


def read_head(path: Path, rows: int = HEAD_ROWS):
    """The first rows of a table file (a pandas frame) and its row count (None when unknown)."""
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path)
        return meta.read_row_group(0).slice(0, rows).to_pandas() if meta.num_row_groups else pd.DataFrame(), \
            meta.metadata.num_rows
    if suffix == ".jsonl":
        with path.open() as fh:
            count = sum(1 for line in fh if line.strip())
        return pd.read_json(path, lines=True, nrows=rows), count
    if suffix == ".json":
        frame = pd.read_json(path)
        return frame.head(rows), len(frame)
    with path.open("rb") as fh:
        count = max(0, sum(1 for _ in fh) - 1)
    return pd.read_csv(path, nrows=rows, sep="\t" if suffix == ".tsv" else ","), count


def describe_table(path: Path, root: Path) -> str:
    """Schema (columns and dtypes), row count and first rows of one table file."""
    try:
        head, count = read_head(path)
    except Exception as exc:  # noqa: BLE001 - a file we cannot parse is described as such, never a crash
        return f"{path.relative_to(root)}: not readable as a table ({type(exc).__name__}: {str(exc)[:100]})"
    columns = ", ".join(f"{c} ({t})" for c, t in list(head.dtypes.items())[:40])
    more = f" (+{head.shape[1] - 40} more)" if head.shape[1] > 40 else ""
    text = head.to_csv(index=False)
    text = text if len(text) < 1200 else text[:1200] + "...\n"
    return (f"{path.relative_to(root)}: {count if count is not None else '?'} rows x {head.shape[1]} columns: "
            f"{columns}{more}\n{text.rstrip()}")


def describe_media(folder: Path, root: Path) -> str | None:
    """Count, formats and total size of the images or audio files directly in ``folder`` (None if few)."""
    files = [p for p in folder.iterdir() if p.is_file()]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    audio = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
    media = images if len(images) >= len(audio) else audio
    if not media:
        return None
    kind = "images" if media is images else "audio files"
    formats = ", ".join(f"{n} {s}" for s, n in Counter(p.suffix.lower() for p in media).most_common())
    text = (f"{folder.relative_to(root)}/: {len(media)} {kind} ({formats}), "
            f"{human_size(sum(p.stat().st_size for p in media))}")
    if media is images:
        try:
            from PIL import Image

            sizes: Counter[str] = Counter()
            for p in sorted(media)[:20]:
                with Image.open(p) as image:
                    sizes[f"{image.size[0]}x{image.size[1]} {image.mode}"] += 1
            text += "; sizes of the first 20: " + ", ".join(f"{s} ({n})" for s, n in sizes.most_common(4))
        except Exception:  # noqa: BLE001 - no PIL or a format it cannot open: the count is enough
            pass
    return text + f"; e.g. {', '.join(p.name for p in sorted(media)[:3])}"


def describe_archive(path: Path, root: Path) -> str:
    """The listing of a zip or tar archive (first entries and a count)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [i.filename for i in archive.infolist()]
                size = sum(i.file_size for i in archive.infolist())
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                members = archive.getmembers()
                names, size = [m.name for m in members], sum(m.size for m in members)
        else:
            return f"{path.relative_to(root)}: an archive dojoflow cannot list ({path.suffix})"
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        return f"{path.relative_to(root)}: unreadable archive ({exc})"
    by_type = Counter(Path(n).suffix.lower() or "(none)" for n in names if not n.endswith("/"))
    return (f"{path.relative_to(root)}: archive of {len(names)} entries ({human_size(size)} unpacked; "
            f"{', '.join(f'{n} {s}' for s, n in by_type.most_common(5))}); first: {', '.join(names[:5])}")


def describe_folder(root: Path, prefix: str = "data/", skip: tuple[str, ...] = ("description.md",)) -> str:
    """The whole description of ``root`` (paths shown under ``prefix``, as the agent's code sees them)."""
    root = Path(root)
    tree: list[str] = []
    _tree(root, root, 0, tree)
    sections = [f"Files under {prefix}:", *[f"  {line}" for line in tree if not line.strip().startswith(skip)]]
    tables: list[str] = []
    media: list[str] = []
    archives: list[str] = []
    for path in sorted(root.rglob("*")):
        if path.name in skip:
            continue
        if path.is_dir():
            described = describe_media(path, root)
            if described:
                media.append(described)
        elif path.suffix.lower() in TABLE_SUFFIXES and len(tables) < 12 and \
                sum(1 for _ in path.parent.glob(f"*{path.suffix}")) <= LISTED_FILES:
            tables.append(describe_table(path, root))
        elif path.suffix.lower() in ARCHIVE_SUFFIXES and len(archives) < 8:
            archives.append(describe_archive(path, root))
    if tables:
        sections += ["", "Tables (schema and first rows):", *tables]
    if media:
        sections += ["", "Media folders:", *media]
    if archives:
        sections += ["", "Archives:", *archives]
    text = "\n".join(sections)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "\n... (description truncated)"


__all__ = ["describe_archive", "describe_folder", "describe_media", "describe_table", "human_size", "read_head"]
