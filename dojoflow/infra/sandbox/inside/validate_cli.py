"""The submission checker inside the sandbox: ``python validate_cli.py [FILE]`` posts the file to the local
validation endpoint (``http://localhost:5000/validate``, as in MLE-bench) and prints its answer.

The endpoint checks the format only (columns, ids, row count, value types); it never gives a score. Exit
status: 0 when the submission is valid, 1 when it is not, 2 when the endpoint cannot be reached.
Standard library only (dojoflow is not importable inside the sandbox).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
import uuid

DEFAULT_FILE = "/home/submission/submission.csv"
DEFAULT_URL = "http://localhost:5000/validate"


def post(path: str, url: str) -> dict:
    """POST ``path`` as multipart field ``file`` (what ``curl -F file=@path`` sends); the JSON answer."""
    boundary = uuid.uuid4().hex
    with open(path, "rb") as fh:
        content = fh.read()
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{os.path.basename(path)}\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}")


def main(argv: list[str]) -> int:
    """Validate ``argv[0]`` (default: the submission path); the exit status of the module docstring."""
    path = argv[0] if argv else DEFAULT_FILE
    if not os.path.isfile(path):
        print(f"File {path} does not exist.")
        return 1
    try:
        answer = post(path, os.environ.get("DOJOFLOW_VALIDATE_URL", DEFAULT_URL))
    except OSError as exc:
        print(f"the validation endpoint does not answer: {exc}")
        return 2
    print(json.dumps(answer))
    return 0 if answer.get("valid") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
