"""The local validation endpoint of a command episode: ``POST /validate`` checks a submission's format,
as MLE-bench's grading server does, and never gives a score.

It runs in the harness (it needs the test ids, which live with the hidden answers) and reaches the sandbox
through a unix socket. The check is :func:`~dojoflow.tasks_catalog.submission.validate_submission`: the
columns, the ids of the test rows, the row count, value types and ranges; none of it depends on the
hidden labels, so no sequence of calls can reveal anything about them. Requests: a multipart form with the
file in field ``file`` (``curl -F file=@submission.csv``), or the CSV as the raw body. Answer:
``{"result": "Submission is valid." | "Submission is invalid: ...", "valid": bool, "errors": [...]}``.
Every call is logged (time, size, validity, number of errors) to ``<episode>/validation/calls.jsonl``.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dojoflow.infra.endpoint import HttpReply, HttpRequest
from dojoflow.tasks_catalog.spec import TaskSpec
from dojoflow.tasks_catalog.submission import validate_submission


def submitted_file(request: HttpRequest) -> bytes | None:
    """The file of a multipart form's ``file`` field, else the raw body (None when empty)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.body)
        for part in message.iter_parts() if message.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == "file":
                payload = part.get_payload(decode=True)
                return payload if isinstance(payload, bytes) else None
        return None
    return request.body or None


class ValidationEndpoint:
    """The handler; ``expected_ids``: the ids of the test rows."""

    def __init__(self, spec: TaskSpec, expected_ids: Any, log_dir: Path) -> None:
        self.spec, self.expected_ids = spec, expected_ids
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.calls = 0
        self._lock = threading.Lock()

    def handle(self, request: HttpRequest) -> HttpReply:
        """``POST /validate`` and ``GET /health``."""
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.method == "GET" and path == "/health":
            return HttpReply.of_json(200, {"status": "running"})
        if request.method != "POST" or path != "/validate":
            return HttpReply.of_json(404, {"error": "the validation endpoint serves POST /validate"})
        content = submitted_file(request)
        if content is None:
            return self._answer(0, ["no file: POST the submission as form field 'file' (curl -F file=@FILE)"])
        with tempfile.TemporaryDirectory(prefix="dojoflow-validate-") as tmp:
            path_ = Path(tmp) / "submission.csv"
            path_.write_bytes(content)
            result = validate_submission(path_, self.spec, self.expected_ids)
        return self._answer(len(content), list(result.errors))

    def _answer(self, size: int, errors: list[str]) -> HttpReply:
        valid = not errors
        with self._lock:
            self.calls += 1
            with (self.log_dir / "calls.jsonl").open("a") as fh:
                fh.write(json.dumps({"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "bytes": size,
                                     "valid": valid, "errors": len(errors)}) + "\n")
        message = "Submission is valid." if valid else "Submission is invalid: " + "; ".join(errors)
        return HttpReply.of_json(200, {"result": message, "valid": valid, "errors": errors})
