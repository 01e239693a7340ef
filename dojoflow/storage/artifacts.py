"""Artifact store interface with a local-directory implementation (S3 implements the same interface).

Keys are ``/``-separated paths such as ``episodes/<episode-id>/steps/000/code.py``.
The store is chosen by ``DOJOFLOW_ARTIFACT_STORE``: unset or a directory for a local store, or
``s3://bucket/prefix`` (with ``DOJOFLOW_S3_ENDPOINT_URL`` for MinIO and other S3-compatible stores).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from dojoflow.storage.files import link_or_copy, safe_key


class ArtifactStore(Protocol):
    """Put and get files by key; ``uri`` says where a key lives, for humans and for MLflow."""

    def put_file(self, key: str, path: Path) -> str:
        """Store the file at ``path`` under ``key``; its URI."""

    def put_bytes(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key``; its URI."""

    def get_bytes(self, key: str) -> bytes:
        """The content stored under ``key``."""

    def list(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix``, sorted."""

    def uri(self, key: str) -> str:
        """Where ``key`` lives (``file://`` or ``s3://``)."""


class LocalArtifactStore:
    """Artifacts as files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / safe_key(key)

    def put_file(self, key: str, path: Path) -> str:
        """Hard-link (or copy) ``path`` to ``key``."""
        link_or_copy(Path(path), self._path(key))
        return self.uri(key)

    def put_bytes(self, key: str, data: bytes) -> str:
        """Write ``data`` to ``key``."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        """Read ``key``."""
        return self._path(key).read_bytes()

    def list(self, prefix: str = "") -> list[str]:
        """Every file under ``prefix``, as keys."""
        base = self.root / safe_key(prefix) if prefix.strip("/") else self.root
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def uri(self, key: str) -> str:
        """The file URI of ``key``."""
        return self._path(key).resolve().as_uri()


def artifact_store(settings) -> ArtifactStore:
    """The configured store (see the module docstring)."""
    target = settings.artifact_store
    if target.startswith("s3://"):
        from dojoflow.storage.s3 import S3ArtifactStore

        return S3ArtifactStore(target, endpoint_url=settings.s3_endpoint_url)
    return LocalArtifactStore(Path(target))
