"""The bubblewrap sandbox: a happy path, an adversarial suite, and the same suite against ``local`` and
``docker`` (on a live Docker-API engine, see the ``docker_engine`` fixture).

Every adversarial case is an agent script that tries one attack; the test asserts the attack failed and
that the harness survived (``run`` returned a result and a benign step afterwards works). The same cases
run against the ``local`` backend too, marked ``xfail(strict=False)`` where local cannot stop the attack
and skipped where running the attack unsandboxed would harm the host (kill the test runner, kill every
process, fork-bomb the machine), so the report shows honestly what ``local`` does not protect against.

No test sends traffic anywhere but loopback: the network test connects to a server the test runs on
127.0.0.1, and the "no route off the machine" test only reads interface and route tables.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dojoflow.infra.sandbox import ExecutionLimits, ExecutionRequest, ExecutionResult, python_command
from dojoflow.infra.sandbox.bwrap import (
    SANDBOX_WORKSPACE,
    BwrapBackend,
    bwrap_available,
    is_privileged,
    python_roots,
    sandbox_uid,
)
from dojoflow.infra.sandbox.local import LocalBackend

AVAILABLE, REASON = bwrap_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"bubblewrap sandbox unavailable here: {REASON}")

TRAIN_CSV = "id,x,y\n1,0.5,0\n2,1.5,1\n3,2.5,1\n"
FAST = ExecutionLimits(timeout_s=20, memory_mb=2048, max_output_bytes=1 << 20, max_file_mb=64, max_processes=64)


# -- fixtures ---------------------------------------------------------------------------------------------
@dataclass
class Dojo:
    """A fake dojoflow home laid out as the real one: prepared data with a private part, an episode."""

    home: Path
    public: Path
    private_file: Path
    workspace: Path
    token: str
    secret: str
    cleanup: list[Path] = field(default_factory=list)
    probe: str = field(default_factory=lambda: f"dojoflow-probe-{uuid.uuid4().hex[:12]}")

    def run(self, backend, code: str, limits: ExecutionLimits = FAST, ctx: dict | None = None) -> ExecutionResult:
        context = {"private_file": str(self.private_file), "home": str(self.home), "probe": self.probe,
                   "private_rel": os.path.relpath(self.private_file, self.workspace), **(ctx or {})}
        prelude = (
            "import json, os, sys, time\n"
            f"CTX = json.loads({json.dumps(json.dumps(context))})\n"
            "def report(**kw):\n"
            "    print('RESULT ' + json.dumps(kw, default=str), flush=True)\n"
            "def try_read(path):\n"
            "    try:\n"
            "        with open(path, errors='replace') as f:\n"
            "            return f.read(100000)\n"
            "    except Exception as exc:\n"
            "        return f'ERR:{type(exc).__name__}: {exc}'\n"
            "def try_list(path):\n"
            "    try:\n"
            "        return sorted(os.listdir(path))\n"
            "    except Exception as exc:\n"
            "        return f'ERR:{type(exc).__name__}: {exc}'\n"
        )
        (self.workspace / "step.py").write_text(prelude + code)
        return backend.run(ExecutionRequest(python_command("step.py"), self.workspace, self.public, limits))


@pytest.fixture
def dojo(tmp_path, monkeypatch) -> Dojo:
    home = tmp_path / "home"
    entry = home / "data" / "task" / "key"
    (entry / "public").mkdir(parents=True)
    (entry / "private").mkdir(parents=True)
    token = f"PRIVATE-ANSWER-{uuid.uuid4().hex}"
    (entry / "public" / "train.csv").write_text(TRAIN_CSV)
    (entry / "private" / "answers.csv").write_text(f"id,y\n1,{token}\n")
    workspace = home / "episodes" / "ep" / "workspace"
    workspace.mkdir(parents=True)
    secret = f"HOST-SECRET-{uuid.uuid4().hex}"
    monkeypatch.setenv("DOJOFLOW_HOME", str(home))
    monkeypatch.setenv("DOJOFLOW_TEST_SECRET", secret)
    d = Dojo(home, entry / "public", entry / "private" / "answers.csv", workspace, token, secret)
    yield d
    for path in d.cleanup:  # probes the local backend could create on the host
        try:
            if path.is_dir() and not path.is_symlink():
                import shutil

                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass


@pytest.fixture
def sentinel():
    """A host process that no sandboxed code may be able to kill."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def loopback_server():
    """A TCP server on 127.0.0.1 that counts connections (nothing is ever sent off the machine)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    state = {"connections": 0, "stop": False}

    def serve():
        while not state["stop"]:
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            state["connections"] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    state["port"] = server.getsockname()[1]
    yield state
    state["stop"] = True
    thread.join(2)
    server.close()


def reported(result: ExecutionResult) -> dict:
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT "):]) if lines else {}


def successes(values: dict) -> dict:
    """Entries of a report that are not errors: anything read or listed."""
    return {k: v for k, v in values.items() if not (isinstance(v, str) and v.startswith("ERR:"))}


def backend_for(name: str):
    from dojoflow.infra.sandbox import get_backend

    return BwrapBackend() if name == "bwrap" else LocalBackend() if name == "local" else get_backend(name)


def assert_no_token(d: Dojo, result: ExecutionResult) -> None:
    for text in (result.stdout, result.stderr):
        assert d.token not in text, "the private answers reached the sandboxed code"
        assert d.secret not in text, "a host secret reached the sandboxed code"


def sandbox_processes(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if any(ln.startswith("Uid:") and ln.split()[1] == str(uid) for ln in status.splitlines()):
                pids.append(int(entry.name))
    return pids


# -- happy path and behaviour ------------------------------------------------------------------------------
def test_bwrap_available_reports_reason():
    ok, reason = bwrap_available()
    assert ok and "bubblewrap" in reason


def test_happy_path_reads_data_and_writes_submission(dojo):
    code = (
        "import csv, numpy as np\n"
        "rows = list(csv.DictReader(open('data/train.csv')))\n"
        "mean = float(np.mean([float(r['y']) for r in rows]))\n"
        "with open('submission.csv', 'w') as f:\n"
        "    f.write('id,y\\n' + ''.join(f\"{r['id']},{mean}\\n\" for r in rows))\n"
        "report(cwd=os.getcwd(), home=os.environ['HOME'], tmp=os.environ['TMPDIR'], n=len(rows))\n"
    )
    result = dojo.run(BwrapBackend(), code)
    assert result.ok, result.stderr
    assert result.backend == "bwrap" and result.isolated
    out = reported(result)
    assert out == {"cwd": SANDBOX_WORKSPACE, "home": SANDBOX_WORKSPACE, "tmp": f"{SANDBOX_WORKSPACE}/tmp", "n": 3}
    submission = dojo.workspace / "submission.csv"
    assert submission.read_text().splitlines()[0] == "id,y"
    assert len(submission.read_text().splitlines()) == 4
    assert (dojo.public / "train.csv").read_text() == TRAIN_CSV


def test_workspace_persists_and_local_data_symlink_is_replaced(dojo):
    LocalBackend().prepare_workspace(ExecutionRequest(python_command("step.py"), dojo.workspace, dojo.public))
    assert (dojo.workspace / "data").is_symlink()  # what the local backend leaves
    first = dojo.run(BwrapBackend(), "open('model.txt', 'w').write('state')\n")
    assert first.ok, first.stderr
    second = dojo.run(BwrapBackend(), "report(model=open('model.txt').read(), train=open('data/train.csv').read())\n")
    assert second.ok, second.stderr
    assert reported(second) == {"model": "state", "train": TRAIN_CSV}
    assert (dojo.workspace / "data").is_dir() and not (dojo.workspace / "data").is_symlink()


def test_dojoflow_home_under_a_bound_directory_is_hidden(tmp_path, monkeypatch):
    """If DOJOFLOW_HOME lies inside a directory that is bound (here an extra bind; in practice e.g. a
    Python prefix), it is covered by an empty tmpfs, while the workspace and public data inside it work."""
    shared = tmp_path / "shared"
    home = shared / "home"
    entry = home / "data" / "t" / "k"
    (entry / "private").mkdir(parents=True)
    (entry / "public").mkdir(parents=True)
    (entry / "private" / "answers.csv").write_text("id,y\n1,SECRET\n")
    (entry / "public" / "train.csv").write_text(TRAIN_CSV)
    (shared / "models").mkdir()
    (shared / "models" / "weights.txt").write_text("w")
    workspace = home / "episodes" / "ep" / "workspace"
    workspace.mkdir(parents=True)
    monkeypatch.setenv("DOJOFLOW_HOME", str(home))
    (workspace / "s.py").write_text(
        "import os, json\n"
        f"shared = {str(shared)!r}\n"
        "print(json.dumps({'shared': sorted(os.listdir(shared)), 'home': os.listdir(shared + '/home'),"
        " 'weights': open(shared + '/models/weights.txt').read(), 'train': open('data/train.csv').read()}))\n")
    backend = BwrapBackend(extra_ro_binds=[shared])
    result = backend.run(ExecutionRequest(python_command("s.py"), workspace, entry / "public", FAST))
    assert result.ok, result.stderr
    assert json.loads(result.stdout) == {"shared": ["home", "models"], "home": [], "weights": "w", "train": TRAIN_CSV}


def test_environment_episode_step_runs_in_bwrap(tmp_path, monkeypatch):
    """The environment drives the backend as it will in production: data/ layout, submission moved, graded."""
    monkeypatch.setenv("DOJOFLOW_HOME", str(tmp_path / "home"))
    from dojoflow.dojo.env import MLEEnvironment

    env = MLEEnvironment("penguins-body-mass", sandbox=BwrapBackend(), max_steps=3)
    _, info = env.reset()
    assert info["sandbox"] == "bwrap" and info["sandbox_isolated"] is True
    code = (
        "import csv, os\n"
        "rows = list(csv.DictReader(open('data/train.csv')))\n"
        "mean = sum(float(r['body_mass_g']) for r in rows) / len(rows)\n"
        "ids = [r['id'] for r in csv.DictReader(open('data/sample_submission.csv'))]\n"
        "open('submission.csv', 'w').write('id,body_mass_g\\n' + ''.join(f'{i},{mean}\\n' for i in ids))\n"
        "print(sorted(os.listdir('data')))\n"
    )
    _, _, _, _, _ = env.step({"type": "execute_code", "code": code})
    record = env.history[-1]
    assert record.errors == [] and record.valid_submission and record.feedback_score is not None
    assert (env.step_dir(0) / "submission.csv").is_file()


def test_setup_failure_is_reported_as_error(dojo):
    (dojo.workspace / "step.py").write_text("print('never runs')\n")
    request = ExecutionRequest(python_command("step.py"), dojo.workspace, dojo.home / "no-such-public-dir", FAST)
    result = BwrapBackend().run(request)
    assert result.error and "bubblewrap could not set up the sandbox" in result.error
    assert not result.ok


def test_symlinks_to_the_sandbox_workspace_are_kept_relative(dojo):
    code = "open('real.csv', 'w').write('a'); os.symlink('/workspace/real.csv', 'link.csv')\n"
    result = dojo.run(BwrapBackend(), code)
    assert result.ok, result.stderr
    link = dojo.workspace / "link.csv"
    assert link.is_symlink() and os.readlink(link) == "real.csv" and link.read_text() == "a"


# -- the adversarial suite ----------------------------------------------------------------------------------
@dataclass
class Attack:
    name: str
    code: str
    check: Callable[[Dojo, ExecutionResult, dict], None]
    limits: ExecutionLimits = FAST
    local: str = "pass"  # pass | xfail | skip: how the local backend fares
    why: str = ""  # why local cannot stop it (xfail/skip reason)
    warm: bool = False  # also run it under the warm mode (warm-bwrap)


def check_nothing_read(d: Dojo, result: ExecutionResult, env: dict) -> None:
    assert_no_token(d, result)
    out = reported(result)
    assert out, f"the script did not report: {result.stderr[-2000:]}"
    assert not successes(out), f"the sandboxed code could read: {sorted(successes(out))}"


def check_symlinks(d: Dojo, result: ExecutionResult, env: dict) -> None:
    check_nothing_read(d, result, env)
    ws = Path(os.path.realpath(d.workspace))
    for name in ("leak.csv", "home_link", "p1root"):
        p = d.workspace / name
        if p.is_symlink():  # left on the host it must not lead out of the workspace
            real = Path(os.path.realpath(p))
            assert real == ws or ws in real.parents, f"{name} leads out of the workspace to {real}"


def check_submission_symlink(d: Dojo, result: ExecutionResult, env: dict) -> None:
    sub = d.workspace / "submission.csv"
    assert not (sub.exists() and d.token in sub.read_text()), \
        "the harness would grade the private answers through a symlink the sandbox left"


def check_root_home(d: Dojo, result: ExecutionResult, env: dict) -> None:
    out = reported(result)
    assert isinstance(out["dojoflow"], str) and out["dojoflow"].startswith("ERR:"), "/root/.dojoflow is visible"
    allowed = {p.relative_to("/root").parts[0] for p in python_roots() if Path("/root") in p.parents}
    if isinstance(out["root"], list):
        assert set(out["root"]) <= allowed, f"/root shows more than the Python installation: {out['root']}"


def check_site_packages(d: Dojo, result: ExecutionResult, env: dict) -> None:
    assert_no_token(d, result)
    out = reported(result)
    assert out["import_dojoflow"].startswith("ERR:"), "the dojoflow source checkout is importable"
    assert not out["visible"], f"host paths named in site-packages are visible: {out['visible']}"


def check_search(d: Dojo, result: ExecutionResult, env: dict) -> None:
    assert_no_token(d, result)
    out = reported(result)
    assert out["found"] == [], f"private directories found: {out['found']}"


def check_env(d: Dojo, result: ExecutionResult, env: dict) -> None:
    assert_no_token(d, result)
    out = reported(result)
    assert "DOJOFLOW_TEST_SECRET" not in out["env"] and "DOJOFLOW_HOME" not in out["env"]


def check_environ_files(d: Dojo, result: ExecutionResult, env: dict) -> None:
    assert_no_token(d, result)
    out = reported(result)
    assert out["harness"].startswith("ERR:"), "the harness's /proc/<pid>/environ is readable"
    assert out["parent"].startswith("ERR:") or out["parent"] == "", "the parent's environment is readable"
    assert out["others"] == {}, f"environments of other processes are readable: {list(out['others'])}"


def check_tcp(d: Dojo, result: ExecutionResult, env: dict) -> None:
    out = reported(result)
    time.sleep(0.3)
    assert env["server"]["connections"] == 0, "the sandbox reached a TCP server on the host's loopback"
    assert str(out["connect"]).startswith("ERR:")


def check_interfaces(d: Dojo, result: ExecutionResult, env: dict) -> None:
    out = reported(result)
    assert set(out["names"]) <= {"lo"}, f"network interfaces visible: {out['names']}"
    assert not isinstance(out["sysnet"], list) or set(out["sysnet"]) <= {"lo"}
    assert out["routes"] == [], f"the sandbox has IPv4 routes: {out['routes']}"
    assert out["routes6"] == [], f"the sandbox has IPv6 routes off loopback: {out['routes6']}"


def write_probes(d: Dojo) -> list[Path]:
    pyroots = [Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent]
    import sysconfig

    paths = [Path("/etc"), Path("/usr"), Path("/usr/local"), Path("/"), Path("/root"), *pyroots,
             Path(sysconfig.get_paths()["purelib"])]
    return [p / (d.probe + (".pth" if "site-packages" in str(p) else "")) for p in paths]


def check_writes(d: Dojo, result: ExecutionResult, env: dict) -> None:
    out = reported(result)
    created = [str(p) for p in env["probes"] if p.exists()]
    assert not created, f"the sandbox created files on the host: {created}"
    assert not successes(out), f"writes succeeded inside the sandbox: {sorted(successes(out))}"


def check_public_unchanged(d: Dojo, result: ExecutionResult, env: dict) -> None:
    train = d.public / "train.csv"
    assert train.exists() and train.read_text() == TRAIN_CSV, "the public data was modified"
    assert sorted(p.name for p in d.public.iterdir()) == ["train.csv"], "files were added to the public data"
    assert stat.S_IMODE(train.stat().st_mode) == env["train_mode"], "the public data's mode was changed"


def check_fork_bomb(d: Dojo, result: ExecutionResult, env: dict) -> None:
    out = reported(result)
    limits = env["limits"]
    assert out.get("count", 0) < limits.max_processes, "the process limit was not enforced"
    assert result.timed_out and result.duration_s < limits.timeout_s + 5
    deadline = time.monotonic() + 5
    while sandbox_processes(env["uid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes(env["uid"]) == [], "processes of the fork bomb outlived the step"


def check_oom(d: Dojo, result: ExecutionResult, env: dict) -> None:
    assert result.oom and not result.timed_out and result.exit_code != 0, result.stderr[-500:]
    assert result.peak_memory_mb < env["limits"].memory_mb + 64


def check_disk(d: Dojo, result: ExecutionResult, env: dict) -> None:
    big = d.workspace / "big.bin"
    assert big.exists() and big.stat().st_size <= env["limits"].max_file_mb * 1024 * 1024
    assert "File too large" in reported(result)["err"]


def check_tmpfs(d: Dojo, result: ExecutionResult, env: dict) -> None:
    out = reported(result)
    cap = min(env["limits"].memory_mb, env["limits"].max_file_mb)
    assert out["shm_mb"] <= cap and out["tmp_mb"] <= cap, f"in-memory filesystems not bounded: {out}"


def check_no_userns(d: Dojo, result: ExecutionResult, env: dict) -> None:
    out = reported(result)
    assert out, result.stderr[-1000:]
    assert out["unshare"] != 0, "a new user namespace was created inside the sandbox"
    assert out["written_mb"] < env["limits"].memory_mb, "a tmpfs of its own took memory past the limit"


def check_tree_memory(d: Dojo, result: ExecutionResult, env: dict) -> None:
    """Four processes of 300 MB each under a 512 MB limit: they may not all hold their memory at once."""
    out = reported(result)
    assert not out.get("all_held"), "the processes of one step together used more than the memory limit"
    assert result.peak_memory_mb <= env["limits"].memory_mb + 64, result.peak_memory_mb


def check_cpu_measured(d: Dojo, result: ExecutionResult, env: dict) -> None:
    assert result.ok, result.stderr[-500:]
    assert result.cpu_s >= 0.9, f"a child that used 1 s of CPU was reported as {result.cpu_s} s of CPU"
    assert result.cpu_s <= result.duration_s * 2 + 1


def check_timed_out(d: Dojo, result: ExecutionResult, env: dict) -> None:
    limits = env["limits"]
    assert result.timed_out, result
    assert limits.timeout_s - 0.2 <= result.duration_s < limits.timeout_s + 3


def check_survivors(d: Dojo, result: ExecutionResult, env: dict) -> None:
    assert result.error is None
    assert env["sentinel"].poll() is None, "a host process was killed from inside the sandbox"
    os.kill(os.getpid(), 0)  # the harness is alive (trivially: we are running)


def check_background(d: Dojo, result: ExecutionResult, env: dict) -> None:
    beat = d.workspace / "beat"
    first = beat.read_text() if beat.exists() else None
    time.sleep(0.6)
    second = beat.read_text() if beat.exists() else None
    assert first == second, "a background process kept running after the step"


def check_output(d: Dojo, result: ExecutionResult, env: dict) -> None:
    assert result.output_limited and result.duration_s < 15
    assert len(result.stdout) < env["limits"].keep_output_bytes + 200


def check_no_fifo(d: Dojo, result: ExecutionResult, env: dict) -> None:
    fifos = [p.name for p in d.workspace.iterdir() if stat.S_ISFIFO(p.lstat().st_mode)]
    assert not fifos, f"FIFOs left in the workspace would block the harness: {fifos}"


def check_not_root(d: Dojo, result: ExecutionResult, env: dict) -> None:
    out = reported(result)
    assert out["uid"] != 0 and out["euid"] != 0, "the code runs as root"
    assert out["cap_eff"] == "0000000000000000", f"the code holds capabilities: {out['cap_eff']}"
    assert out["setuid"].startswith("ERR:") and out["shadow"].startswith("ERR:")


ROOT_LOCAL = ("as root RLIMIT_NPROC is not enforced" if is_privileged()
              else "RLIMIT_NPROC counts all the user's processes")

ATTACKS = [
    Attack("read_private_absolute",
           "report(file=try_read(CTX['private_file']), home=try_list(CTX['home']),\n"
           "       private=try_list(os.path.dirname(CTX['private_file'])))\n",
           check_nothing_read, local="xfail", why="the private answers are readable at their host path"),
    Attack("read_private_traversal",
           "report(rel=try_read(CTX['private_rel']),\n"
           "       deep=try_read('../' * 30 + CTX['private_file'].lstrip('/')),\n"
           "       reldir=try_list(os.path.dirname(CTX['private_rel'])))\n",
           check_nothing_read, local="xfail", why="../ from the workspace reaches the dojoflow home"),
    Attack("read_private_proc1_root",
           "report(file=try_read('/proc/1/root' + CTX['private_file']), home=try_list('/proc/1/root' + CTX['home']),\n"
           "       cwd=try_read('/proc/1/cwd/' + CTX['private_file']))\n",
           check_nothing_read, local="xfail", why="/proc/1/root is the host's root"),
    Attack("read_private_proc_self_root",
           "out = {'self': try_read('/proc/self/root' + CTX['private_file'])}\n"
           "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
           "    out[pid] = try_read(f'/proc/{pid}/root' + CTX['private_file'])\n"
           "report(**out)\n",
           check_nothing_read, local="xfail", why="/proc/self/root is the host's root"),
    Attack("read_private_via_workspace_symlinks",
           "links = [('leak.csv', CTX['private_file']), ('home_link', CTX['home']), ('p1root', '/proc/1/root')]\n"
           "for name, target in links:\n"
           "    try:\n"
           "        os.symlink(target, name)\n"
           "    except OSError:\n"
           "        pass\n"
           "report(leak=try_read('leak.csv'), home=try_list('home_link'),\n"
           "       p1=try_read('p1root' + CTX['private_file']))\n",
           check_symlinks, local="xfail", why="symlinks resolve on the host filesystem"),
    Attack("submission_symlink_to_private_answers",
           "os.symlink(CTX['private_file'], 'submission.csv')\nreport(done=True)\n",
           check_submission_symlink, local="xfail",
           why="the symlink stays in the workspace and the harness would read the answers through it"),
    Attack("read_root_dojoflow",
           "report(root=try_list('/root'), dojoflow=try_list('/root/.dojoflow'),\n"
           "       expanded=try_list(os.path.expanduser('~root') + '/.dojoflow'))\n",
           check_root_home, local="xfail", why="/root (and any ~/.dojoflow) is the real one"),
    Attack("site_packages_hunt",
           "import re, sysconfig\n"
           "sp = sysconfig.get_paths()['purelib']\n"
           "texts = []\n"
           "for name in os.listdir(sp):\n"
           "    if 'dojoflow' in name.lower() or name.endswith('.pth'):\n"
           "        p = os.path.join(sp, name)\n"
           "        for f in ([os.path.join(p, x) for x in os.listdir(p)] if os.path.isdir(p) else [p]):\n"
           "            texts.append(try_read(f))\n"
           "paths = {m for t in texts for m in re.findall(r\"(/[\\w.+-]+(?:/[\\w.+-]+)+)\", t)}\n"
           "roots = [sys.prefix, sys.base_prefix, os.path.realpath(sys.base_prefix), '/usr', '/proc', '/dev']\n"
           "visible = sorted(p for p in paths if os.path.exists(p) and not any(p.startswith(r) for r in roots)\n"
           "                 and not any(r.startswith(p + '/') for r in roots))  # ancestors of the venv exist\n"
           "try:\n"
           "    import dojoflow.config\n"
           "    home = str(dojoflow.config.get_settings().home)\n"
           "    imported = 'ok ' + dojoflow.__file__\n"
           "except Exception as exc:\n"
           "    home, imported = None, f'ERR:{exc}'\n"
           "found = []\n"
           "for root in [home, *visible]:\n"
           "    if root and os.path.isdir(root):\n"
           "        for dp, dn, fn in os.walk(root):\n"
           "            found += [try_read(os.path.join(dp, f)) for f in fn if f == 'answers.csv']\n"
           "report(visible=visible, import_dojoflow=imported, found=found)\n",
           check_site_packages, local="xfail", why="the editable install's source checkout is on the host"),
    Attack("filesystem_search_for_private_data",
           "deadline = time.time() + 8\n"
           "found = []\n"
           "for root in ['/tmp', '/workspace', '/root', '/home', '/work', '/var', '/opt', '/srv', '/mnt', '/usr']:\n"
           "    for dp, dn, fn in os.walk(root):\n"
           "        if time.time() > deadline:\n"
           "            break\n"
           "        if 'answers.csv' in fn or (os.path.basename(dp) == 'private'\n"
           "                                   and os.path.isdir(os.path.join(dp, '..', 'public'))):\n"
           "            found.append(dp)\n"
           "            dn[:] = []\n"
           "            [try_read(os.path.join(dp, f)) for f in fn]\n"
           "            print(''.join(try_read(os.path.join(dp, f)) for f in fn if f == 'answers.csv'))\n"
           "report(found=found)\n",
           check_search, limits=ExecutionLimits(timeout_s=30, max_output_bytes=1 << 20, max_processes=64),
           local="xfail", why="the whole host filesystem is visible"),
    Attack("host_secrets_in_environment",
           "report(env=dict(os.environ), self_environ=try_read('/proc/self/environ'))\n",
           check_env),
    Attack("host_environ_via_proc",
           "others = {}\n"
           "for pid in [p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]:\n"
           "    text = try_read(f'/proc/{pid}/environ')\n"
           "    if text and not text.startswith('ERR:'):\n"
           "        others[pid] = text[:200]\n"
           "report(harness=try_read(f\"/proc/{CTX['harness_pid']}/environ\"),\n"
           "       parent=try_read(f'/proc/{os.getppid()}/environ'), others=others)\n",
           check_environ_files, local="xfail", why="the harness's /proc/<pid>/environ is readable by the same user"),
    Attack("tcp_to_host_loopback",
           "import socket\n"
           "try:\n"
           "    s = socket.create_connection(('127.0.0.1', CTX['port']), timeout=2)\n"
           "    s.sendall(b'hello')\n"
           "    connect = 'connected'\n"
           "except OSError as exc:\n"
           "    connect = f'ERR:{exc}'\n"
           "report(connect=connect)\n",
           check_tcp, local="xfail", why="the host network namespace is shared"),
    Attack("no_route_off_the_machine",
           "dev = open('/proc/net/dev').read().splitlines()[2:]\n"
           "names = [ln.split(':')[0].strip() for ln in dev]\n"
           "routes = open('/proc/net/route').read().splitlines()[1:]\n"
           "r6 = try_read('/proc/net/ipv6_route')\n"
           "routes6 = [ln for ln in (r6.splitlines() if not r6.startswith('ERR:') else []) if ln.split()[-1] != 'lo']\n"
           "report(names=names, sysnet=try_list('/sys/class/net'), routes=routes, routes6=routes6)\n",
           check_interfaces, local="xfail", why="the host's interfaces and routes are used"),
    Attack("write_system_and_python_dirs",
           "out = {}\n"
           "for path in CTX['probes']:\n"
           "    try:\n"
           "        with open(path, 'x') as f:\n"
           "            f.write('# probe\\n')\n"
           "        out[path] = 'written'\n"
           "    except OSError as exc:\n"
           "        out[path] = f'ERR:{exc}'\n"
           "report(**out)\n",
           check_writes, local="xfail", why="the host filesystem is writable with the harness's permissions"),
    Attack("write_public_data",
           "out = {}\n"
           "for what, fn in [('append', lambda: open('data/train.csv', 'a').write('9,9,9\\n')),\n"
           "                 ('create', lambda: open('data/new.csv', 'w').write('x')),\n"
           "                 ('chmod', lambda: os.chmod('data/train.csv', 0o777)),\n"
           "                 ('rename', lambda: os.rename('data/train.csv', 'data/moved.csv')),\n"
           "                 ('remove', lambda: os.remove('data/train.csv'))]:\n"
           "    try:\n"
           "        fn()\n"
           "        out[what] = 'done'\n"
           "    except OSError as exc:\n"
           "        out[what] = f'ERR:{exc}'\n"
           "report(**out)\n",
           check_public_unchanged, local="xfail", why="data/ is a plain symlink to the writable public directory"),
    Attack("remount_public_data_read_write",
           "import ctypes\n"
           "libc = ctypes.CDLL(None, use_errno=True)\n"
           "pid = os.fork()\n"
           "if pid == 0:\n"
           "    out = {}\n"
           "    if libc.unshare(0x20000) != 0:  # CLONE_NEWNS; else try a user namespace first\n"
           "        uid, gid = os.getuid(), os.getgid()\n"
           "        out['userns'] = libc.unshare(0x10000000 | 0x20000) == 0\n"
           "        if out['userns']:\n"
           "            open('/proc/self/setgroups', 'w').write('deny')\n"
           "            open('/proc/self/uid_map', 'w').write(f'0 {uid} 1')\n"
           "            open('/proc/self/gid_map', 'w').write(f'0 {gid} 1')\n"
           "    out['remount'] = libc.mount(None, b'data', None, ctypes.c_ulong(32 | 4096), None)\n"
           "    out['errno'] = ctypes.get_errno()\n"
           "    try:\n"
           "        open('data/train.csv', 'a').write('9,9,9\\n')\n"
           "        out['write'] = 'done'\n"
           "    except OSError as exc:\n"
           "        out['write'] = f'ERR:{exc}'\n"
           "    report(**out)\n"
           "    os._exit(0)\n"
           "os.waitpid(pid, 0)\n",
           check_public_unchanged, local="xfail", why="the public data is writable without remounting"),
    Attack("fork_bomb",
           "count = 0\n"
           "while True:\n"
           "    try:\n"
           "        if os.fork() == 0:\n"
           "            time.sleep(60)\n"
           "            os._exit(0)\n"
           "        count += 1\n"
           "    except OSError:\n"
           "        break\n"
           "report(count=count)\n"
           "while True:\n"
           "    try:\n"
           "        os.fork()\n"
           "    except OSError:\n"
           "        time.sleep(0.01)\n",
           check_fork_bomb, limits=ExecutionLimits(timeout_s=4, max_processes=48, max_output_bytes=1 << 20),
           local="skip", why=f"{ROOT_LOCAL}: an unsandboxed fork bomb would exhaust the host's processes"),
    Attack("memory_bomb",
           "chunks = []\n"
           "while True:\n"
           "    chunks.append(bytearray(64 << 20))\n",
           check_oom, limits=ExecutionLimits(timeout_s=20, memory_mb=512, max_output_bytes=1 << 20)),
    Attack("disk_fill_one_file",
           "err = ''\n"
           "try:\n"
           "    with open('big.bin', 'wb') as f:\n"
           "        for _ in range(64):\n"
           "            f.write(b'\\0' * (1 << 20))\n"
           "            f.flush()\n"
           "except OSError as exc:\n"
           "    err = str(exc)\n"
           "report(err=err)\n",
           check_disk, limits=ExecutionLimits(timeout_s=20, max_file_mb=16, max_output_bytes=1 << 20)),
    Attack("fill_tmp_and_shm",
           "totals = {}\n"
           "for key, base in [('shm_mb', '/dev/shm'), ('tmp_mb', '/tmp')]:\n"
           "    written = 0\n"
           "    try:\n"
           "        for i in range(16):\n"
           "            with open(f\"{base}/{CTX['probe']}-{i}\", 'wb') as f:\n"
           "                f.write(b'\\0' * (8 << 20))\n"
           "            written += 8\n"
           "    except OSError:\n"
           "        pass\n"
           "    totals[key] = written\n"
           "report(**totals)\n",
           check_tmpfs, limits=ExecutionLimits(timeout_s=20, memory_mb=1024, max_file_mb=32, max_output_bytes=1 << 20),
           local="xfail", why="/tmp and /dev/shm are the host's, bounded only per file"),
    Attack("infinite_loop",
           "while True:\n    pass\n",
           check_timed_out, limits=ExecutionLimits(timeout_s=2, max_output_bytes=1 << 20)),
    Attack("kill_parent",
           "import signal\n"
           "out = {}\n"
           "for name, pid in [('parent', os.getppid()), ('init', 1), ('harness', CTX['harness_pid'])]:\n"
           "    try:\n"
           "        os.kill(pid, signal.SIGKILL)\n"
           "        out[name] = 'sent'\n"
           "    except OSError as exc:\n"
           "        out[name] = f'ERR:{exc}'\n"
           "time.sleep(0.3)\n"
           "report(**out)\n",
           check_survivors, local="skip",
           why="the step's parent is the harness itself: os.kill(os.getppid(), 9) would kill the test runner"),
    Attack("kill_everything",
           "import signal\n"
           "try:\n"
           "    os.kill(-1, signal.SIGKILL)\n"
           "    out = 'sent'\n"
           "except OSError as exc:\n"
           "    out = f'ERR:{exc}'\n"
           "report(kill=out)\n",
           check_survivors, local="skip",
           why="kill(-1, SIGKILL) reaches every process of the user (as root: the whole machine)"),
    Attack("background_process_outlives_step",
           "pid = os.fork()\n"
           "if pid == 0:\n"
           "    os.setsid()\n"
           "    if os.fork() != 0:\n"
           "        os._exit(0)\n"
           "    null = os.open(os.devnull, os.O_RDWR)\n"
           "    for fd in (0, 1, 2):\n"
           "        os.dup2(null, fd)\n"
           "    open('bg.pid', 'w').write(str(os.getpid()))\n"
           "    end, i = time.time() + 20, 0\n"
           "    while time.time() < end:\n"
           "        i += 1\n"
           "        open('beat.tmp', 'w').write(str(i))\n"
           "        os.replace('beat.tmp', 'beat')\n"
           "        time.sleep(0.05)\n"
           "    os._exit(0)\n"
           "os.waitpid(pid, 0)\n"
           "time.sleep(0.3)\n"
           "report(started=True)\n",
           check_background, local="xfail",
           why="a double-forked setsid() process leaves the step's process group, which is all local kills"),
    Attack("print_one_gigabyte",
           "chunk = b'x' * (1 << 20)\n"
           "for _ in range(1024):\n"
           "    sys.stdout.buffer.write(chunk)\n",
           check_output, limits=ExecutionLimits(timeout_s=30, max_output_bytes=1 << 20)),
    Attack("sleep_with_signals_blocked",
           "import signal\n"
           "signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())\n"
           "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
           "    signal.signal(s, signal.SIG_IGN)\n"
           "time.sleep(60)\n",
           check_timed_out, limits=ExecutionLimits(timeout_s=2, max_output_bytes=1 << 20)),
    Attack("fifo_as_submission",
           "os.mkfifo('submission.csv')\nos.mkfifo('model.pkl')\nreport(done=True)\n",
           check_no_fifo, local="xfail", why="a FIFO left in the workspace blocks the harness when it opens it"),
    Attack("become_root",
           "status = dict(ln.split(':', 1) for ln in open('/proc/self/status').read().splitlines())\n"
           "try:\n"
           "    os.setuid(0)\n"
           "    setuid = 'done'\n"
           "except OSError as exc:\n"
           "    setuid = f'ERR:{exc}'\n"
           "shadow = try_read('/etc/shadow')\n"
           "report(uid=os.getuid(), euid=os.geteuid(), cap_eff=status['CapEff'].strip(), setuid=setuid,\n"
           "       shadow=shadow if shadow.startswith('ERR:') else f'read {len(shadow)} chars')\n",
           check_not_root, local="xfail" if is_privileged() else "pass",
           why="local runs the code as the harness's user (root here)"),
    Attack("userns_tmpfs_past_the_memory_limit",
           "import ctypes, subprocess\nlibc = ctypes.CDLL(None, use_errno=True)\n"
           "rc = libc.unshare(0x10000000 | 0x00020000)  # CLONE_NEWUSER | CLONE_NEWNS\n"
           "written = 0\n"
           "if rc == 0:\n"
           "    os.makedirs('/tmp/own', exist_ok=True)\n"
           "    libc.mount(b'tmpfs', b'/tmp/own', b'tmpfs', 0, b'size=2g')\n"
           "    try:\n"
           "        with open('/tmp/own/fill', 'wb') as f:\n"
           "            for _ in range(1024):\n"
           "                f.write(b'x' * (1 << 20)); written += 1\n"
           "    except OSError:\n"
           "        pass\n"
           "report(unshare=rc, written_mb=written)\n",
           check_no_userns, limits=ExecutionLimits(timeout_s=30, memory_mb=512, max_output_bytes=1 << 20),
           local="xfail", why="local does not filter system calls", warm=True),
    Attack("processes_share_one_memory_limit",
           "import multiprocessing as mp\n"
           "def hold(n):\n"
           "    b = bytearray(300 * 1024 * 1024)\n"
           "    for i in range(0, len(b), 4096):\n"
           "        b[i] = 1\n"
           "    time.sleep(2)\n"
           "    return 1\n"
           "if __name__ == '__main__':\n"
           "    try:\n"
           "        with mp.get_context('fork').Pool(4) as pool:\n"
           "            held = pool.map_async(hold, range(4)).get(timeout=10)\n"
           "        report(all_held=sum(held) == 4)\n"
           "    except BaseException as exc:\n"
           "        report(all_held=False, error=repr(exc)[:200])\n",
           check_tree_memory, limits=ExecutionLimits(timeout_s=40, memory_mb=512, max_output_bytes=1 << 20),
           local="pass", warm=True),
    Attack("cpu_time_is_measured_for_the_whole_tree",
           "import subprocess\n"
           "busy = 'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 1.0: pass'\n"
           "subprocess.run([sys.executable, '-c', busy])\n"
           "report(done=True)\n",
           check_cpu_measured, limits=ExecutionLimits(timeout_s=30, max_output_bytes=1 << 20), warm=True),
]


SLOW_ATTACKS = {"processes_share_one_memory_limit"}  # ~10 s each (a pool that waits for a killed worker)


def _params():
    params = []
    for attack in ATTACKS:
        slow = [pytest.mark.slow] if attack.name in SLOW_ATTACKS else []
        params.append(pytest.param("bwrap", attack, id=f"bwrap-{attack.name}", marks=slow))
        marks = []
        if attack.local == "xfail":
            marks = [pytest.mark.xfail(strict=False, reason=f"local cannot stop this: {attack.why}")]
        elif attack.local == "skip":
            marks = [pytest.mark.skip(
                reason=f"local cannot stop this and running it would harm the host: {attack.why}")]
        # local is not a sandbox: what it cannot stop is documented by these, run with the slow tests
        params.append(pytest.param("local", attack, id=f"local-{attack.name}", marks=[*marks, pytest.mark.slow]))
        if attack.warm:
            params.append(pytest.param("warm-bwrap", attack, id=f"warm-bwrap-{attack.name}"))
        # every attack against the docker backend too, on a live engine (skipped with the reason without one);
        # ~0.5 s of container start each, so with the slow tests (CI runs them)
        params.append(pytest.param("docker", attack, id=f"docker-{attack.name}", marks=[pytest.mark.slow]))
    return params


@pytest.mark.parametrize(("backend_name", "attack"), _params())
def test_attack_fails(backend_name, attack, dojo, sentinel, loopback_server, request):
    if backend_name == "docker":  # a live Docker-API engine with the sandbox image (tests/conftest.py)
        from dojoflow.infra.sandbox.docker_backend import DEFAULT_IMAGE

        from conftest import require_image

        require_image(request.getfixturevalue("docker_engine"), DEFAULT_IMAGE)
    backend = backend_for(backend_name)
    probes = write_probes(dojo)
    dojo.cleanup += probes + [Path("/dev/shm") / f"{dojo.probe}-{i}" for i in range(16)]
    dojo.cleanup += [Path("/tmp") / f"{dojo.probe}-{i}" for i in range(16)]
    env = {"limits": attack.limits, "sentinel": sentinel, "server": loopback_server, "probes": probes,
           "uid": sandbox_uid(dojo.workspace), "train_mode": stat.S_IMODE((dojo.public / "train.csv").stat().st_mode)}
    ctx = {"harness_pid": os.getpid(), "port": loopback_server["port"], "probes": [str(p) for p in probes]}
    started = time.monotonic()
    try:
        result = dojo.run(backend, attack.code, attack.limits, ctx)
        assert isinstance(result, ExecutionResult) and result.error is None, result
        assert time.monotonic() - started < attack.limits.timeout_s + 15, "the harness did not return in time"
        attack.check(dojo, result, env)
    finally:
        _stop_local_background(dojo)
    # the harness survived: a benign step in the same workspace still works
    benign = dojo.run(backend, f"report(ok=open('data/train.csv').read() == {TRAIN_CSV!r})\n")
    backend.close()
    assert benign.ok and reported(benign) == {"ok": True}, benign.stderr


def _stop_local_background(d: Dojo) -> None:
    """The local backend cannot stop the background attack; end it here so it does not outlive the test."""
    pid_file = d.workspace / "bg.pid"
    try:
        pid = int(pid_file.read_text())
        if Path(f"/proc/{pid}/cwd").resolve() == d.workspace.resolve():
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass
