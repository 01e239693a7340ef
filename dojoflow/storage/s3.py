"""S3-compatible artifact store (AWS S3, MinIO, moto...) through boto3.

Non-AWS endpoints need path-style addressing and checksums only "when required" (boto3's newer default
checksum headers are rejected by some S3 implementations); both are set whenever an endpoint URL is
given. Requests retry with boto3's "standard" mode.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from dojoflow.errors import UsageError
from dojoflow.storage.files import safe_key

READ_TIMEOUT_S = 30


class S3ArtifactStore:
    """Artifacts as objects under ``s3://bucket/prefix/``."""

    def __init__(self, url: str, endpoint_url: str | None = None, region: str | None = None,
                 max_attempts: int = 5, connect_timeout: float = 5.0, client=None) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise UsageError(f"not an S3 URL: {url!r} (expected s3://bucket/prefix)")
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        self.endpoint_url = endpoint_url
        self._client = client or self._make_client(endpoint_url, region, max_attempts, connect_timeout)

    @staticmethod
    def _make_client(endpoint_url, region, max_attempts, connect_timeout):
        import boto3
        from botocore.config import Config

        options = {"retries": {"max_attempts": max_attempts, "mode": "standard"},
                   "connect_timeout": connect_timeout, "read_timeout": READ_TIMEOUT_S}
        if endpoint_url:
            options.update(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                           response_checksum_validation="when_required")
        return boto3.client("s3", endpoint_url=endpoint_url, region_name=region or "us-east-1",
                            config=Config(**options))

    def _key(self, key: str) -> str:
        key = safe_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, path: Path) -> str:
        """Upload ``path`` to ``key``."""
        self._client.upload_file(str(path), self.bucket, self._key(key))
        return self.uri(key)

    def put_bytes(self, key: str, data: bytes) -> str:
        """Upload ``data`` to ``key``."""
        self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        """Download ``key``."""
        return self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def list(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (paginated listing)."""
        full = self._key(prefix) if prefix.strip("/") else self.prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            keys += [obj["Key"][strip:] for obj in page.get("Contents", [])]
        return sorted(keys)

    def uri(self, key: str) -> str:
        """The ``s3://`` URI of ``key``."""
        return f"s3://{self.bucket}/{self._key(key)}"
