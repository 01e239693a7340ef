"""The ``local`` sandbox backend: limits, output capture, clean environment, workspace layout."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dojoflow.infra.sandbox import ExecutionLimits, ExecutionRequest, ExecutionResult, get_backend, python_command

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the local backend's limits are tested on Linux")


def run_script(tmp_path: Path, code: str, public_dir: Path | None = None, **limits) -> tuple[ExecutionResult, Path]:
    """Write ``code`` as step.py into a fresh workspace and run it with the local backend."""
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    script = workspace / "step.py"
    script.write_text(textwrap.dedent(code))
    request = ExecutionRequest(command=python_command(str(script)), workspace=workspace, public_dir=public_dir,
                               limits=ExecutionLimits(**limits))
    result = get_backend("local").run(request)
    return result, workspace


def test_backend_selection(monkeypatch):
    backend = get_backend("local")
    assert backend.name == "local"
    assert backend.isolated is False
    monkeypatch.delenv("DOJOFLOW_SANDBOX", raising=False)
    from dojoflow.infra.sandbox.bwrap import bwrap_available

    assert get_backend().name == ("bwrap" if bwrap_available()[0] else "local")  # default: auto
    monkeypatch.setenv("DOJOFLOW_SANDBOX", "local")
    assert get_backend().name == "local"
    with pytest.raises(ValueError, match="unknown sandbox backend 'nope'"):
        get_backend("nope")


def test_python_command_uses_this_interpreter():
    assert python_command("x.py") == (sys.executable, "-u", "x.py")


def test_success_captures_stdout_and_stderr(tmp_path):
    result, workspace = run_script(tmp_path, """
        import sys
        print("hello from the step")
        print("a warning", file=sys.stderr)
        open("out.txt", "w").write("written")
    """, timeout_s=30)
    assert result.exit_code == 0
    assert result.ok is True
    assert result.failure_message(ExecutionLimits()) is None
    assert result.stdout == "hello from the step\n"
    assert result.stderr == "a warning\n"
    assert result.stdout_bytes == len("hello from the step\n")
    assert (result.timed_out, result.oom, result.output_limited, result.error) == (False, False, False, None)
    assert result.backend == "local" and result.isolated is False
    assert (workspace / "out.txt").read_text() == "written"  # runs with the workspace as working directory
    assert result.duration_s > 0
    assert result.to_dict()["exit_code"] == 0


def test_exception_exits_one_with_message(tmp_path):
    result, _ = run_script(tmp_path, """
        raise RuntimeError("the model diverged")
    """, timeout_s=30)
    assert result.exit_code == 1
    assert result.ok is False
    assert "Traceback" in result.stderr
    message = result.failure_message(ExecutionLimits())
    assert "status 1" in message
    assert "RuntimeError: the model diverged" in message
    assert not (result.timed_out or result.oom or result.output_limited)


def test_nonzero_exit_code_is_reported(tmp_path):
    result, _ = run_script(tmp_path, "import sys; sys.exit(3)\n", timeout_s=30)
    assert result.exit_code == 3
    assert "status 3" in result.failure_message(ExecutionLimits())


def test_infinite_loop_times_out(tmp_path):
    start = time.monotonic()
    result, _ = run_script(tmp_path, """
        print("started", flush=True)
        while True:
            pass
    """, timeout_s=2)
    elapsed = time.monotonic() - start
    assert result.timed_out is True
    assert result.ok is False
    assert 1.5 <= result.duration_s < 10
    assert elapsed < 10
    assert result.stdout.startswith("started")
    assert "timed out" in result.failure_message(ExecutionLimits(timeout_s=2))


def test_signal_ignoring_sleeper_is_killed(tmp_path):
    start = time.monotonic()
    result, _ = run_script(tmp_path, """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        print("ignoring signals", flush=True)
        time.sleep(60)
    """, timeout_s=2)
    assert time.monotonic() - start < 10
    assert result.timed_out is True
    assert result.exit_code is not None and result.exit_code < 0  # killed by a signal
    assert "ignoring signals" in result.stdout


def test_huge_output_is_stopped_and_bounded(tmp_path):
    start = time.monotonic()
    result, _ = run_script(tmp_path, """
        import sys
        line = "x" * 1023 + "\\n"
        for _ in range(100 * 1024):  # 100 MB
            sys.stdout.write(line)
        print("finished")
    """, timeout_s=60)
    elapsed = time.monotonic() - start
    limits = ExecutionLimits()
    assert result.output_limited is True
    assert result.ok is False
    assert elapsed < 20
    assert result.timed_out is False
    assert limits.max_output_bytes < result.stdout_bytes < 100 * 1024 * 1024
    assert len(result.stdout) < 1024 * 1024
    assert "omitted" in result.stdout
    assert "finished" not in result.stdout
    assert result.stdout.startswith("xxxx")
    assert "output limit" in result.failure_message(limits)


def test_long_output_under_the_limit_keeps_head_and_tail(tmp_path):
    result, _ = run_script(tmp_path, """
        print("FIRST LINE")
        for i in range(20000):
            print(f"line {i:06d}")
        print("LAST LINE")
    """, timeout_s=30)
    assert result.ok is True
    assert result.output_limited is False
    assert result.stdout.startswith("FIRST LINE\n")
    assert result.stdout.endswith("LAST LINE\n")
    assert "omitted" in result.stdout
    assert "line 010000" not in result.stdout
    assert len(result.stdout.encode()) < ExecutionLimits().keep_output_bytes + 200


def test_memory_bomb_is_out_of_memory(tmp_path):
    result, _ = run_script(tmp_path, """
        import numpy as np
        print("numpy imported", flush=True)
        big = np.ones(8 * 1024 ** 3 // 8)  # 8 GB of float64
        print("allocated", big.nbytes)
    """, timeout_s=30, memory_mb=1024)
    assert result.oom is True, result.stderr[-2000:]
    assert result.exit_code != 0
    assert result.timed_out is False
    assert "numpy imported" in result.stdout
    assert "allocated" not in result.stdout
    assert "out of memory" in result.failure_message(ExecutionLimits(memory_mb=1024))


def _process_state(pid: int) -> str:
    """The one-letter state from /proc (R, S, Z, ...), or "gone" once the pid no longer exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def test_background_process_does_not_outlive_the_step(tmp_path):
    result, workspace = run_script(tmp_path, """
        import subprocess
        child = subprocess.Popen(["sleep", "1000"])
        open("bg.pid", "w").write(str(child.pid))
        print("left it running")
    """, timeout_s=30)
    assert result.exit_code == 0, result.stderr
    pid = int((workspace / "bg.pid").read_text())
    # the orphan is killed when the step ends; it is reparented to init, which reaps it shortly after
    deadline = time.monotonic() + 10
    state = _process_state(pid)
    while state != "gone" and time.monotonic() < deadline:
        time.sleep(0.05)
        state = _process_state(pid)
    if state != "gone":
        # an init that never reaps (e.g. a container without one) leaves a zombie: dead, no longer running
        assert state == "Z", f"background process {pid} still alive in state {state}"
    else:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_environment_is_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("DOJOFLOW_TEST_SECRET", "hunter2-do-not-leak")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    result, workspace = run_script(tmp_path, """
        import os
        print("SECRET=" + os.environ.get("DOJOFLOW_TEST_SECRET", "<absent>"))
        print("KEY=" + os.environ.get("OPENAI_API_KEY", "<absent>"))
        print("HOME=" + os.environ["HOME"])
        print("OMP=" + os.environ["OMP_NUM_THREADS"])
        print("CUDA=[" + os.environ["CUDA_VISIBLE_DEVICES"] + "]")
        print("ENV=" + repr(sorted(os.environ.items())))
    """, timeout_s=30)
    assert result.ok, result.stderr
    assert "SECRET=<absent>" in result.stdout
    assert "KEY=<absent>" in result.stdout
    assert "hunter2" not in result.stdout
    assert "sk-test" not in result.stdout
    assert f"HOME={workspace}" in result.stdout
    assert "OMP=1" in result.stdout
    assert "CUDA=[]" in result.stdout


def test_extra_env_and_gpu_index_are_passed(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "s.py").write_text("import os; print(os.environ['MY_FLAG'], os.environ['CUDA_VISIBLE_DEVICES'])\n")
    request = ExecutionRequest(command=python_command("s.py"), workspace=workspace, gpu=1,
                               extra_env={"MY_FLAG": "on"}, limits=ExecutionLimits(timeout_s=30))
    result = get_backend("local").run(request)
    assert result.stdout.strip() == "on 1"


def test_public_dir_appears_as_data(tmp_path):
    public = tmp_path / "public"
    public.mkdir()
    (public / "train.csv").write_text("id,y\n1,2\n")
    result, workspace = run_script(tmp_path, """
        import os
        print(sorted(os.listdir("data")))
        print(open("data/train.csv").read(), end="")
        print(os.path.isdir("tmp"))
    """, public_dir=public, timeout_s=30)
    assert result.ok, result.stderr
    assert result.stdout == "['train.csv']\nid,y\n1,2\nTrue\n"
    assert (workspace / "data").resolve() == public.resolve()


def test_missing_command_sets_error(tmp_path):
    workspace = tmp_path / "ws"
    request = ExecutionRequest(command=("/no/such/command-dojoflow", "arg"), workspace=workspace,
                               limits=ExecutionLimits(timeout_s=5))
    result = get_backend("local").run(request)
    assert result.error is not None
    assert "FileNotFoundError" in result.error or "No such file" in result.error
    assert result.exit_code is None
    assert result.ok is False
    assert "could not run the code" in result.failure_message(request.limits)
