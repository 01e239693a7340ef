"""Unit tests of the warm worker program (``infra/sandbox/inside/warm_worker.py``) and the shared rlimits.

The end-to-end behaviour (forks, limits, leftovers, a worker killed by its step) is in
test_sandbox_warm.py; these test the program's pieces directly.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dojoflow.infra.sandbox import ExecutionLimits
from dojoflow.infra.sandbox.inside import rlimits, warm_worker


@pytest.mark.parametrize(("exc", "status"), [(None, 0), (SystemExit(None), 0), (SystemExit(3), 3),
                                             (SystemExit(256 + 4), 4), (SystemExit("bye"), 1),
                                             (ValueError("x"), 1), (KeyboardInterrupt(), 1)])
def test_exit_status_matches_the_interpreter(exc, status):
    assert warm_worker.exit_status(exc) == status


def test_parent_pid_survives_odd_command_names():
    assert warm_worker.parent_pid("123 (a b) c) S 45 123 123 0") == 45
    assert warm_worker.parent_pid("7 (python) R 1 7 7 0 -1") == 1


def test_children_of_reads_a_proc_tree(tmp_path):
    for pid, ppid in ((10, 1), (11, 10), (12, 10), (13, 11)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (x) S {ppid} 0 0")
    (tmp_path / "self").mkdir()
    (tmp_path / "99").mkdir()  # a process that vanished: no stat file
    assert sorted(warm_worker.children_of(10, str(tmp_path))) == [11, 12]


def test_empty_directory_removes_everything_inside_only(tmp_path):
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "f").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "d")
    warm_worker.empty_directory(str(tmp_path))
    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == []
    warm_worker.empty_directory(str(tmp_path / "missing"))  # no error


def test_run_script_behaves_like_python_script(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import sys, atexit\natexit.register(lambda: print('atexit ran'))\n"
                      "print('argv', sys.argv[1:], __name__)\nsys.exit(5)\n")
    code = ("import sys; from dojoflow.infra.sandbox.inside import warm_worker as w; "
            f"sys.exit(w.run_script({str(script)!r}, ['a', 'b']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 5
    assert proc.stdout == "argv ['a', 'b'] __main__\natexit ran\n"


def test_the_worker_serves_a_step_over_its_socket(tmp_path):
    """The program as the harness runs it: a script, a socket, a run request, pipes passed with SCM_RIGHTS."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    (tmp_path / "step.py").write_text("print('hello from the fork')\n")
    proc = subprocess.Popen([sys.executable, warm_worker.__file__, str(theirs.fileno()), "0", str(tmp_path),
                             json.dumps(["json"])], pass_fds=(theirs.fileno(),), stderr=subprocess.PIPE)
    theirs.close()
    try:
        ours.settimeout(60)
        ready = json.loads(ours.recv(warm_worker.MAX_MESSAGE))
        assert ready["op"] == "ready" and ready["loaded"] == ["json"] and ready["failed"] == {}
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        request = {"op": "run", "script": "step.py", "args": [], "timeout_s": 30,
                   "limits": ExecutionLimits(timeout_s=30).rlimits()}
        socket.send_fds(ours, [json.dumps(request).encode()], [out_w, err_w])
        os.close(out_w)
        os.close(err_w)
        assert json.loads(ours.recv(warm_worker.MAX_MESSAGE))["op"] == "started"
        done = json.loads(ours.recv(warm_worker.MAX_MESSAGE))
        assert done["op"] == "done" and done["status"] == 0 and not done["timed_out"] and done["cpu_s"] >= 0
        with os.fdopen(out_r, "rb") as out:
            assert out.read() == b"hello from the fork\n"
        os.close(err_r)
    finally:
        ours.close()  # the worker exits when the harness goes away
        assert proc.wait(30) == 0


def test_rlimits_apply_every_limit_in_a_child():
    limits = ExecutionLimits(memory_mb=512, max_file_mb=8, max_processes=64, cpu_s=7)
    code = ("import resource, json, sys; from dojoflow.infra.sandbox.inside import rlimits; "
            f"rlimits.apply({limits.rlimits()!r}); "
            "print(json.dumps([resource.getrlimit(getattr(resource, n)) for n in "
            "('RLIMIT_AS', 'RLIMIT_CPU', 'RLIMIT_FSIZE', 'RLIMIT_NPROC', 'RLIMIT_CORE')]))")
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    mb = 1024 * 1024
    assert out == [[512 * mb] * 2, [7, 7 + rlimits.CPU_HARD_GRACE_S], [8 * mb] * 2, [64, 64], [0, 0]]
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] != 8 * mb  # the test process itself is untouched


def test_the_worker_file_needs_nothing_but_the_standard_library():
    import ast

    tree = ast.parse(Path(warm_worker.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__"}
    # dojoflow's rlimits where dojoflow is importable, else the sibling file rlimits.py (inside the sandbox)
    assert imported - set(sys.stdlib_module_names) == {"dojoflow", "rlimits"}
    assert (Path(warm_worker.__file__).parent / "rlimits.py").is_file()
