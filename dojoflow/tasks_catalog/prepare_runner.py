"""Runs one task's ``prepare.py`` in a child process: ``python -m dojoflow.tasks_catalog.prepare_runner``.

Preparation code is the task author's (and, for imported competitions, third-party) code: run in the
harness's own process, a ``prepare()`` that loops forever hangs the CLI, one that calls ``sys.exit`` ends it
without a word, one that leaks memory takes the harness down. The parent (``preparation.prepare_task``)
runs this module with a timeout, reads progress reports from file descriptor ``PROGRESS_FD`` (JSON lines)
and turns any failure into a :class:`~dojoflow.errors.PreparationError` that quotes the output. A
:class:`~dojoflow.errors.DojoflowError` raised on purpose (say, "the raw data is missing, download it from
...") is reported as ``{"error": message, "type": class name}`` so that the parent re-raises it as it was
meant, not as a traceback.

Arguments: ``TASK_FOLDER PUBLIC_DIR PRIVATE_DIR PROGRESS_FD [ENTRY]``. ``ENTRY`` (``"module:function"``)
replaces the task's own ``prepare``: it is called as ``function(task_folder, public_dir, private_dir)``
(the MLE-bench importer runs a competition's preparation this way before the task's spec exists).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    """Load the task, run its ``prepare(spec, public_dir, private_dir)``, report progress on the fd."""
    folder, public, private, progress_fd = Path(argv[0]), Path(argv[1]), Path(argv[2]), int(argv[3])
    entry = argv[4] if len(argv) > 4 else ""
    from dojoflow.tasks_catalog.preparation import load_prepare_module, progress_callback
    from dojoflow.tasks_catalog.spec import load_spec

    progress = os.fdopen(progress_fd, "w", buffering=1)

    def report(done: float, total: float, message: str) -> None:
        progress.write(json.dumps([done, total, message]) + "\n")

    from dojoflow.errors import DojoflowError

    try:
        with progress_callback(report):
            if entry:
                module_name, _, function = entry.partition(":")
                getattr(importlib.import_module(module_name), function)(folder, public, private)
            else:
                spec = load_spec(folder)
                load_prepare_module(spec).prepare(spec, public, private)
    except DojoflowError as exc:
        progress.write(json.dumps({"error": str(exc), "type": type(exc).__name__}) + "\n")
        progress.close()
        sys.exit(2)
    progress.close()


if __name__ == "__main__":
    main(sys.argv[1:])
