"""GPU discovery and the GPU pool (fake device indices: no GPU needed), and that the local backend exposes
the assigned GPU to the code."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from dojoflow.infra import gpu as gpu_mod
from dojoflow.infra.gpu import GpuLeaseTimeout, GpuPool, NoGpuError, detect_gpus
from dojoflow.infra.sandbox.base import ExecutionLimits, ExecutionRequest
from dojoflow.infra.sandbox.local import LocalBackend


def _no_overlap(intervals: list[tuple[int, float, float]]) -> None:
    by_index: dict[int, list[tuple[float, float]]] = {}
    for index, start, end in intervals:
        by_index.setdefault(index, []).append((start, end))
    for index, spans in by_index.items():
        spans.sort()
        for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
            assert e1 <= s2, f"GPU {index} leased twice at once: {(s1, e1)} and {(s2, e2)}"


def test_threads_never_share_a_gpu(tmp_path):
    pool = GpuPool([0, 1], lock_dir=tmp_path, poll_s=0.005)
    intervals: list[tuple[int, float, float]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(4):
            with pool.lease(timeout=20) as index:
                start = time.monotonic()
                time.sleep(0.02)
                end = time.monotonic()
            with lock:
                intervals.append((index, start, end))

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(intervals) == 20 and {i for i, _, _ in intervals} <= {0, 1}
    _no_overlap(intervals)


_PROCESS_WORKER = """
import sys, time
from dojoflow.infra.gpu import GpuPool

lock_dir, out, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
pool = GpuPool([5], lock_dir=lock_dir, poll_s=0.005)
lines = []
for _ in range(rounds):
    with pool.lease(timeout=20) as index:
        start = time.time()
        time.sleep(0.05)
        end = time.time()
    lines.append(f"{index} {start} {end}\\n")
open(out, "w").write("".join(lines))
"""


def test_processes_never_share_a_gpu(tmp_path):
    # Fresh interpreters, not fork(): a fork of the test runner inherits whatever threads and at-fork
    # handlers the rest of the suite left behind (Prefect, Ray, torch), which made the children fail at random.
    procs = [subprocess.Popen([sys.executable, "-c", _PROCESS_WORKER, str(tmp_path / "locks"),
                               str(tmp_path / f"out{i}"), "4"], stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    intervals = []
    for i in range(2):
        for line in (tmp_path / f"out{i}").read_text().splitlines():
            index, start, end = line.split()
            intervals.append((int(index), float(start), float(end)))
    assert len(intervals) == 8
    _no_overlap(intervals)


def test_timeout_when_all_leased(tmp_path):
    pool = GpuPool([0], lock_dir=tmp_path, poll_s=0.01)
    with pool.lease() as held:
        assert held == 0 and pool.leased() == [0]
        started = time.monotonic()
        with pytest.raises(GpuLeaseTimeout, match="no GPU became free"):
            with pool.lease(timeout=0.2):
                pass
        assert 0.15 <= time.monotonic() - started < 2
    assert pool.leased() == []


def test_release_on_exception(tmp_path):
    pool = GpuPool([0], lock_dir=tmp_path)
    with pytest.raises(ValueError):
        with pool.lease(timeout=1):
            raise ValueError("episode crashed")
    with pool.lease(timeout=0.1) as index:  # free again
        assert index == 0


def test_no_gpu_is_a_clear_error(tmp_path):
    with pytest.raises(NoGpuError, match="no GPU to lease"):
        with GpuPool([], lock_dir=tmp_path).lease(timeout=1):
            pass


def test_default_lock_dir_is_under_dojoflow_home(session_home):
    assert GpuPool([0]).lock_dir == session_home / "gpu-locks"


def test_detect_gpus_honours_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert detect_gpus() == [2, 3]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert detect_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1, 0")
    assert detect_gpus() == [1, 0]


def test_detect_gpus_uses_nvidia_smi(monkeypatch, tmp_path):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 0\necho 1\n")
    smi.chmod(0o755)
    monkeypatch.setattr(gpu_mod.shutil, "which", lambda name: str(smi) if name == "nvidia-smi" else None)
    assert detect_gpus() == [0, 1]
    monkeypatch.setattr(gpu_mod.shutil, "which", lambda name: None)
    assert detect_gpus() == []


def test_pool_defaults_to_detected_gpus(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4")
    assert GpuPool(lock_dir=tmp_path).devices == [4]


@pytest.mark.parametrize("gpu, expected", [(3, "3"), (None, "")])
def test_local_backend_exposes_the_assigned_gpu(tmp_path, gpu, expected):
    script = "import os; print(repr(os.environ.get('CUDA_VISIBLE_DEVICES')))"
    request = ExecutionRequest((sys.executable, "-c", script), tmp_path, limits=ExecutionLimits(timeout_s=30),
                               gpu=gpu)
    result = LocalBackend().run(request)
    assert result.ok, result
    assert result.stdout.strip() == repr(expected)


def test_gpu_peak_memory_is_sampled_during_a_step(tmp_path, monkeypatch):
    """With a GPU assigned, the step's result carries the device's peak memory (nvidia-smi faked here)."""
    from dojoflow.infra.sandbox import ExecutionLimits, ExecutionRequest, get_backend, python_command

    counter = tmp_path / "calls"
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    # reports 100, 300, 200, 200, ... MiB: the peak is 300
    smi.write_text(f"#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0); echo $((n + 1)) > {counter}\n"
                   "case $n in 0) echo 100;; 1) echo 300;; *) echo 200;; esac\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{smi.parent}:{os.environ['PATH']}")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "step.py").write_text("import time, os\nprint(os.environ['CUDA_VISIBLE_DEVICES'])\ntime.sleep(1.5)\n")
    result = get_backend("local").run(ExecutionRequest(python_command("step.py"), workspace, None,
                                                       ExecutionLimits(timeout_s=20), gpu=0))
    assert result.ok and result.stdout.strip() == "0"
    assert result.gpu_peak_memory_mb == 300.0 and int(counter.read_text()) >= 3
    no_gpu = get_backend("local").run(ExecutionRequest(python_command("step.py"), workspace, None,
                                                       ExecutionLimits(timeout_s=20)))
    assert no_gpu.gpu_peak_memory_mb is None
