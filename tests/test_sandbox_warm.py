"""Warm interpreter mode: steps run in fresh forks of one pre-imported worker, with every per-step limit.

The core cases run with both inner backends (``local`` always, ``bwrap`` where bubblewrap works); the
isolation cases (private answers, the worker's memory) only with ``bwrap``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from dojoflow.infra.sandbox import ExecutionLimits, ExecutionRequest, ExecutionResult, get_backend, python_command
from dojoflow.infra.sandbox.bwrap import bwrap_available
from dojoflow.infra.sandbox.warm import WarmBackend

BWRAP_OK, BWRAP_REASON = bwrap_available()
LIMITS = ExecutionLimits(timeout_s=3, memory_mb=2048, max_output_bytes=1 << 20, max_file_mb=64, max_processes=64)
# a step the timeout must end returns by then: a margin for a loaded 2-core machine, far below the 60 s such a
# step would otherwise run (these check that the kill happens, not how fast: benchmarks/ measures speed)
ENDED_WITHIN_S = LIMITS.timeout_s + 15
INNERS = ["local", pytest.param("bwrap", marks=pytest.mark.skipif(
    not BWRAP_OK, reason=f"bubblewrap sandbox unavailable here: {BWRAP_REASON}"))]
bwrap_only = pytest.mark.skipif(not BWRAP_OK, reason=f"bubblewrap sandbox unavailable here: {BWRAP_REASON}")


class Episode:
    def __init__(self, backend: WarmBackend, workspace: Path, public: Path) -> None:
        self.backend, self.workspace, self.public = backend, workspace, public
        self.index = 0

    def step(self, code: str, limits: ExecutionLimits = LIMITS) -> ExecutionResult:
        name = f"step_{self.index:03d}.py"
        self.index += 1
        (self.workspace / name).write_text(code)
        (self.workspace / "submission.csv").unlink(missing_ok=True)
        return self.backend.run(ExecutionRequest(python_command(name), self.workspace, self.public, limits))


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    entry = home / "data" / "task" / "key"
    (entry / "public").mkdir(parents=True)
    (entry / "private").mkdir(parents=True)
    (entry / "public" / "train.csv").write_text("id,x,y\n1,0.5,0\n2,1.5,1\n3,2.5,1\n4,0.1,0\n")
    token = f"PRIVATE-ANSWER-{uuid.uuid4().hex}"
    (entry / "private" / "answers.csv").write_text(f"id,y\n1,{token}\n")
    workspace = home / "episodes" / "ep" / "workspace"
    workspace.mkdir(parents=True)
    secret = f"HOST-SECRET-{uuid.uuid4().hex}"
    monkeypatch.setenv("DOJOFLOW_HOME", str(home))
    monkeypatch.setenv("DOJOFLOW_TEST_SECRET", secret)  # set before any worker starts
    return {"home": home, "public": entry / "public", "private": entry / "private" / "answers.csv",
            "workspace": workspace, "token": token, "secret": secret}


@pytest.fixture(params=INNERS)
def episode(request, home):
    backend = WarmBackend(get_backend(request.param))
    yield Episode(backend, home["workspace"], home["public"])
    backend.close()


def host_processes_with(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


# -- behaviour ------------------------------------------------------------------------------------------
def test_step_uses_preloaded_libraries_and_writes_submission(episode):
    r = episode.step(
        "import sys\n"
        "print('preloaded', 'pandas' in sys.modules, 'sklearn.linear_model' in sys.modules)\n"
        "print('main', __name__, sys.argv)\n"
        "import numpy as np, pandas as pd\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "df = pd.read_csv('data/train.csv')\n"
        "m = LogisticRegression().fit(df[['x']], df['y'])\n"
        "pd.DataFrame({'id': df['id'], 'y': m.predict(df[['x']])}).to_csv('submission.csv', index=False)\n"
        "print('rows', len(df))\n")
    assert r.ok, (r.stderr, r.error)
    assert "preloaded True True" in r.stdout
    assert "main __main__ ['step_000.py']" in r.stdout
    assert "rows 4" in r.stdout
    assert (episode.workspace / "submission.csv").read_text().startswith("id,y")
    assert r.backend.startswith("warm-") and r.cpu_s >= 0 and r.peak_memory_mb > 0
    r2 = episode.step("import sys; sys.exit(3)\n")
    assert r2.exit_code == 3 and not r2.error
    assert episode.backend.workers_started == 1


def test_raising_step_exits_1_with_traceback(episode):
    r = episode.step("def f():\n    raise ValueError('boom')\nf()\n")
    assert r.exit_code == 1 and not r.error
    assert "Traceback (most recent call last)" in r.stderr and "ValueError: boom" in r.stderr
    assert "boom" in r.failure_message(LIMITS)


def test_infinite_loop_times_out_and_next_step_works(episode):
    episode.step("pass\n")  # start the worker first so timing covers the step only
    started = time.monotonic()
    r = episode.step("while True:\n    pass\n")
    assert r.timed_out and time.monotonic() - started < ENDED_WITHIN_S
    ok = episode.step("print('after')\n")
    assert ok.ok and "after" in ok.stdout
    assert episode.backend.workers_started == 1  # the worker itself survived


def test_blocked_signals_and_sleep_are_killed_on_time(episode):
    episode.step("pass\n")
    started = time.monotonic()
    r = episode.step("import signal, time\n"
                     "blocked = set(signal.Signals) - {signal.SIGKILL, signal.SIGSTOP}\n"
                     "signal.pthread_sigmask(signal.SIG_BLOCK, blocked)\n"
                     "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
                     "    signal.signal(s, signal.SIG_IGN)\n"
                     "time.sleep(60)\n")
    assert r.timed_out and time.monotonic() - started < ENDED_WITHIN_S
    assert episode.step("print('fine')\n").ok


def test_memory_bomb_is_oom(episode):
    r = episode.step("x = bytearray(8 * 1024 ** 3)\n")
    assert r.oom and not r.timed_out and r.exit_code != 0


def test_printing_100mb_is_output_limited(episode):
    r = episode.step("import sys\nchunk = 'x' * (1 << 20) + '\\n'\n"
                     "for _ in range(100):\n    sys.stdout.write(chunk)\n")
    assert r.output_limited and not r.timed_out  # stopped by the output limit, not left to run to the timeout
    assert len(r.stdout) <= LIMITS.keep_output_bytes + 200
    assert episode.step("print('fine')\n").ok


def test_step_that_kills_the_worker_fails_clearly_and_next_step_works(episode):
    assert episode.step("pass\n").ok
    r = episode.step("import os\nprint('killing', flush=True)\nos.kill(os.getppid(), 9)\nimport time\ntime.sleep(30)\n")
    assert not r.ok and r.error and "warm worker died" in r.error
    assert "restarted" in r.failure_message(LIMITS)
    ok = episode.step("import sys\nprint('again', 'pandas' in sys.modules)\n")
    assert ok.ok and "again True" in ok.stdout
    assert episode.backend.workers_started == 2


@pytest.mark.parametrize("inner", INNERS)
def test_step_that_stops_the_worker_is_killed_after_the_grace(inner, home):
    with WarmBackend(get_backend(inner), grace_s=1) as backend:
        ep = Episode(backend, home["workspace"], home["public"])
        assert ep.step("pass\n").ok
        started = time.monotonic()
        r = ep.step("import os, signal, time\nos.kill(os.getppid(), signal.SIGSTOP)\ntime.sleep(60)\n")
        assert r.timed_out and r.error and "did not answer" in r.error
        assert time.monotonic() - started < ENDED_WITHIN_S + 1  # + the 1 s grace
        assert ep.step("print('fine')\n").ok and backend.workers_started == 2


def test_module_state_does_not_leak_between_steps(episode):
    r1 = episode.step("import json, pandas\njson.LEAK = 1\npandas.LEAK = 1\nimport builtins\nbuiltins.LEAK = 1\n"
                      "import sys\nsys.modules['leaky_module'] = json\nprint('set')\n")
    assert r1.ok
    r2 = episode.step("import json, pandas, builtins, sys\n"
                      "print('leak', hasattr(json, 'LEAK'), hasattr(pandas, 'LEAK'), hasattr(builtins, 'LEAK'),"
                      " 'leaky_module' in sys.modules)\n")
    assert "leak False False False False" in r2.stdout


def test_background_process_is_gone_after_the_step(episode):
    marker = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 10 ** 6}"
    r = episode.step("import os, subprocess\n"
                     "if os.fork() == 0:\n"
                     "    os.setsid()\n"
                     f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
                     "    os._exit(0)\n"
                     f"subprocess.Popen(['sleep', '{marker}'])\n"
                     "import time; time.sleep(0.5)\nprint('started')\n")
    assert r.ok, r.stderr
    deadline = time.monotonic() + 2
    while host_processes_with(f"sleep\0{marker}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_processes_with(f"sleep\0{marker}") == []
    assert episode.step("print('fine')\n").ok


def test_each_step_gets_fresh_random_state(episode):
    code = "import random, numpy as np, os\nprint('rng', random.random(), np.random.rand(), os.getpid())\n"
    first, second = episode.step(code), episode.step(code)
    a, b = first.stdout.split(), second.stdout.split()
    assert a[1] != b[1] and a[2] != b[2], (a, b)


def test_multiprocessing_spawn_finds_the_main_module(episode):
    r = episode.step("import multiprocessing as mp\n"
                     "def sq(x):\n    return x * x\n"
                     "if __name__ == '__main__':\n"
                     "    with mp.get_context('spawn').Pool(1) as p:\n        print('spawn', p.map(sq, range(4)))\n"
                     "    with mp.get_context('fork').Pool(1) as p:\n        print('fork', p.map(sq, range(4)))\n",
                     dataclasses.replace(LIMITS, timeout_s=20))
    assert r.ok, r.stderr
    assert "spawn [0, 1, 4, 9]" in r.stdout and "fork [0, 1, 4, 9]" in r.stdout


@pytest.mark.parametrize("inner", INNERS)
def test_missing_preload_module_and_failed_start(inner, home):
    with WarmBackend(get_backend(inner), preload=("numpy", "no_such_module_xyz")) as backend:
        ep = Episode(backend, home["workspace"], home["public"])
        r = ep.step("import sys\nprint('np', 'numpy' in sys.modules)\n")
        assert r.ok and "np True" in r.stdout and r.backend == f"warm-{inner}"
    # the worker cannot start: the step runs cold
    with WarmBackend(get_backend(inner), startup_timeout_s=0.001) as backend:
        r = Episode(backend, home["workspace"], home["public"]).step("print('cold step')\n")
        assert r.ok and "cold step" in r.stdout and r.backend == inner


def test_non_python_command_runs_cold(episode):
    r = episode.backend.run(ExecutionRequest(("/bin/sh", "-c", "echo cold"), episode.workspace, episode.public,
                                             LIMITS))
    assert r.ok and "cold" in r.stdout and not r.backend.startswith("warm-")


def test_host_secrets_are_not_visible(episode, home):
    r = episode.step("import os\nprint(sorted(os.environ.items()))\n"
                     "print(open('/proc/self/environ', 'rb').read())\n")
    assert r.ok and home["secret"] not in r.stdout and "DOJOFLOW_TEST_SECRET" not in r.stdout


# -- isolation (bwrap only) ---------------------------------------------------------------------------------
@bwrap_only
def test_private_answers_and_worker_are_out_of_reach(home):
    with WarmBackend(get_backend("bwrap")) as backend:
        ep = Episode(backend, home["workspace"], home["public"])
        code = (
            "import os\n"
            "def read(p):\n"
            "    try:\n"
            "        return open(p, errors='replace').read()\n"
            "    except Exception as exc:\n"
            "        return f'ERR:{type(exc).__name__}'\n"
            f"paths = [{str(home['private'])!r}, '/proc/1/root' + {str(home['private'])!r},\n"
            f"         '../' * 30 + {str(home['private']).lstrip('/')!r}]\n"
            "ppid = os.getppid()\n"
            "paths += [f'/proc/{ppid}/environ', f'/proc/{ppid}/mem', f'/proc/{ppid}/maps']\n"
            "for p in paths:\n"
            "    print(p, read(p)[:60])\n"
            "try:\n"
            "    open('data/train.csv', 'a').write('x')\n"
            "    print('DATA WRITABLE')\n"
            "except OSError as exc:\n"
            "    print('data read-only', type(exc).__name__)\n"
            "open('/tmp/left-behind', 'w').write('x')\n"
            "print('uid', os.getuid())\n")
        r = ep.step(code)
        assert r.ok, r.stderr
        assert home["token"] not in r.stdout and home["secret"] not in r.stdout
        assert "DATA WRITABLE" not in r.stdout and "data read-only" in r.stdout
        for line in r.stdout.splitlines():
            if line.startswith(("/", "../")):
                assert "ERR:" in line, f"readable from the step: {line}"
        if os.geteuid() == 0:
            assert "uid 0" not in r.stdout
        r2 = ep.step("import os\nprint('tmp', sorted(os.listdir('/tmp')), os.getcwd())\n")
        # /tmp is emptied between steps; only the read-only path to the interpreter stays when the
        # installation itself lives under /tmp (e.g. a checkout in /tmp/ci/.venv)
        skeleton = sorted({Path(p).relative_to("/tmp").parts[0] for p in {sys.prefix, sys.base_prefix}
                           if Path(p).is_relative_to("/tmp")})
        assert f"tmp {skeleton} /workspace" in r2.stdout, r2.stdout
        assert "left-behind" not in r2.stdout
