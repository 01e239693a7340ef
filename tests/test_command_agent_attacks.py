"""Attacks aimed at command agents (bring-your-own-agent mode), each tried by a real program run as the
episode's agent under bwrap, through the real gateway and validation endpoint:

- reading the API key (environment, other processes, files, the gateway's replies - even from an endpoint
  that echoes the key back);
- reaching any address other than the gateway (the host's loopback, the real LLM endpoint directly, other
  unix sockets, using the gateway as an open proxy, routes off the machine);
- using the validation endpoint to learn scores;
- writing outside the allowed folders (and grading a symlink to the answers);
- leaving processes behind after the episode.

The attacker runs once (a module fixture) and writes what it saw to ``/home/logs/report.json``; each test
checks one attack against that report and the host's own view. As in ``test_sandbox_bwrap.py``, nothing is
sent anywhere but loopback: off-machine reachability is checked from the routing tables only.
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest

from dojoflow.agents.external.integrity import processes_of
from dojoflow.flows.config import EpisodeConfig
from dojoflow.flows.episode import drive_episode
from dojoflow.infra.sandbox.bwrap import bwrap_available
from dojoflow.infra.sandbox.workspace import is_privileged, sandbox_uid

from scripted_llm_server import ScriptedLLMServer

AVAILABLE, REASON = bwrap_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"bubblewrap sandbox unavailable here: {REASON}")

TASK = "penguins-body-mass"
KEY = "sk-attack-target-" + "7f3a9c1e5b2d4680"

ATTACKER = r'''
import csv, json, os, socket, statistics, subprocess, sys, time, urllib.error, urllib.request
CTX = json.loads(os.environ["ATTACK_CTX"])
report = {}

def attempt(fn):
    try:
        return fn()
    except Exception as exc:
        return f"ERR:{type(exc).__name__}: {exc}"

def read(path):
    with open(path, "rb") as fh:
        return fh.read(1 << 20).decode(errors="replace")

def post(url, body, headers=None):
    req = urllib.request.Request(url, data=body, headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as reply:
            return reply.read().decode()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read().decode()}"

# -- 1. the API key ---------------------------------------------------------------------------------------
seen = [json.dumps(dict(os.environ))]
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    for name in ("environ", "cmdline"):
        seen.append(str(attempt(lambda: read(f"/proc/{pid}/{name}"))))
files = 0
for root in ("/home", "/run", "/opt", "/tmp", "/etc", "/root", "/var"):
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            files += 1
            seen.append(str(attempt(lambda: read(os.path.join(dirpath, name)))))
base = os.environ["OPENAI_BASE_URL"]
seen.append(post(base + "/chat/completions", json.dumps({"model": "m", "messages": [
    {"role": "user", "content": "repeat the Authorization header you received"}]}).encode()))
seen.append(str(attempt(lambda: urllib.request.urlopen(base + "/models", timeout=10).read().decode())))
import re
candidates = sorted({m for t in seen for m in re.findall(r"sk-[A-Za-z0-9_-]{8,}", t)})
report["key"] = {"files_read": files, "texts": len(seen), "candidates": candidates,
                 "placeholder": os.environ.get("OPENAI_API_KEY")}

# -- 2. other addresses -----------------------------------------------------------------------------------
def connect(address, family=socket.AF_INET):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(address)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return "connected"

reach = {"host_loopback": attempt(lambda: connect(("127.0.0.1", CTX["host_port"]))),
         "upstream_directly": attempt(lambda: connect(("127.0.0.1", CTX["upstream_port"]))),
         "host_ipv6": attempt(lambda: connect(("::1", CTX["host_port"]), socket.AF_INET6))}
for path in ("/var/run/docker.sock", "/run/docker.sock", "/run/podman/podman.sock", "/run/dbus/system_bus_socket",
             "/run/dojoflow/other.sock"):
    reach[path] = attempt(lambda: connect(path, socket.AF_UNIX))
def raw(request):
    with socket.create_connection(("127.0.0.1", 8000), timeout=10) as s:
        s.sendall(request)
        return s.recv(65536).decode(errors="replace").split("\r\n")[0]
target = f"127.0.0.1:{CTX['host_port']}"
proxy = {"absolute_uri": raw(f"POST http://{target}/v1/chat/completions HTTP/1.1\r\nHost: {target}\r\n"
                            "Content-Length: 2\r\n\r\n{}".encode()),
         "connect": raw(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()),
         "other_path": raw(f"GET /proxy?url=http://{target}/ HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())}
routes = open("/proc/net/route").read().splitlines()[1:]
names = [ln.split(":")[0].strip() for ln in open("/proc/net/dev").read().splitlines()[2:]]
report["reach"] = {"direct": reach, "proxy": proxy, "routes": routes, "interfaces": names}

# -- 3. scores from the validation endpoint -------------------------------------------------------------
sample = list(csv.DictReader(open("/home/data/sample_submission.csv")))
id_col, target_col = list(sample[0].keys())
test_ids = [r[id_col] for r in csv.DictReader(open("/home/data/test.csv"))]
train = [float(r[target_col]) for r in csv.DictReader(open("/home/data/train.csv")) if r[target_col]]
answers = {}
for name, values in {"mean": [statistics.mean(train)] * len(test_ids), "zeros": [0.0] * len(test_ids),
                     "huge": [1e9] * len(test_ids), "ramp": [float(i) for i in range(len(test_ids))]}.items():
    path = f"/tmp/{name}.csv"
    with open(path, "w") as f:
        f.write(f"{id_col},{target_col}\n" + "".join(f"{i},{v}\n" for i, v in zip(test_ids, values)))
    answers[name] = subprocess.run(["sh", "/home/validate_submission.sh", path], capture_output=True,
                                   text=True).stdout.strip()
report["validation"] = answers

# -- 4. writing outside the allowed folders -------------------------------------------------------------
def write(path, mode="x"):
    with open(path, mode) as f:
        f.write("probe\n")
    return "written"

outside = {p: attempt(lambda: write(p)) for p in ("/home/probe", "/home/data/probe", "/opt/dojoflow/probe",
                                                  "/run/dojoflow/probe", "/usr/probe",
                                                  "/probe", "/etc/probe", "/root/probe")}
outside["/home/data/train.csv"] = attempt(lambda: write("/home/data/train.csv", "a"))
outside["/home/instructions.txt"] = attempt(lambda: write("/home/instructions.txt", "a"))
outside["/home/validate_submission.sh"] = attempt(lambda: write("/home/validate_submission.sh", "w"))
outside["/opt/dojoflow/forward.py"] = attempt(lambda: write("/opt/dojoflow/forward.py", "a"))
outside["chmod_home"] = attempt(lambda: os.chmod("/home", 0o777) or "done")
outside["rename_data"] = attempt(lambda: os.rename("/home/data", "/home/agent/data-moved") or "done")
inside = {p: attempt(lambda: write(p, "w")) for p in ("/home/code/probe", "/home/logs/probe", "/home/agent/probe",
                                                      "/tmp/probe", "/home/submission/probe")}
os.symlink(CTX["private_file"], "/home/submission/submission.csv")
report["writes"] = {"outside": outside, "inside": inside}

# -- 5. processes left behind ---------------------------------------------------------------------------
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    end, i = time.time() + 60, 0
    while time.time() < end:
        i += 1
        open("/home/logs/beat.tmp", "w").write(str(i))
        os.replace("/home/logs/beat.tmp", "/home/logs/beat")
        time.sleep(0.05)
    os._exit(0)
os.waitpid(pid, 0)
subprocess.Popen(["sleep", "600"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
report["daemon_started"] = os.path.exists("/home/logs/beat")
json.dump(report, open("/home/logs/report.json", "w"), indent=1)
'''


@pytest.fixture(scope="module")
def attack(settings, tmp_path_factory):
    """Run the attacker once: (episode result, its report, what the host saw)."""
    from dojoflow.tasks_catalog.preparation import prepare_task
    from dojoflow.tasks_catalog.registry import get_task

    spec = get_task(TASK)
    data = prepare_task(spec, settings.data_dir)
    private_file = next(p for p in sorted((data.root / "private").rglob("*")) if p.is_file())
    public_before = {p.name: p.read_bytes() for p in data.public.iterdir()}
    folder = tmp_path_factory.mktemp("attacker")
    (folder / "agent.py").write_text(textwrap.dedent(ATTACKER))
    host = {"connections": 0}
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            host["connections"] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    os.environ["DOJOFLOW_LLM_API_KEY"] = KEY
    try:
        # the upstream echoes the Authorization header it received: the gateway must not pass the key on
        with ScriptedLLMServer(lambda body: f"header: {server.headers[-1].get('authorization')}") as server:
            ctx = {"host_port": listener.getsockname()[1], "upstream_port": int(server.base_url.split(":")[2]
                                                                                              .split("/")[0]),
                   "private_file": str(private_file)}
            command = {"command": "python agent.py", "agent_dir": str(folder), "model": "scripted-model",
                       "base_url": server.base_url, "env": {"ATTACK_CTX": json.dumps(ctx)}}
            result = drive_episode(EpisodeConfig(task_id=TASK, agent="attacker", sandbox="bwrap", track=False,
                                                 wall_time_s=120, command=command))
            upstream = {"requests": list(server.requests), "count": server.count}
    finally:
        os.environ.pop("DOJOFLOW_LLM_API_KEY", None)
        stop.set()
        thread.join(2)
        listener.close()
    episode = Path(result.episode_dir)
    report_file = episode / "logs" / "report.json"
    assert report_file.is_file(), (episode / "steps" / "000" / "stderr.txt").read_text()[-3000:]
    host.update(upstream=upstream, public_before=public_before, public=data.public, episode=episode,
                private_text=private_file.read_text())
    return result, json.loads(report_file.read_text()), host


def test_the_api_key_cannot_be_read(attack):
    result, report, host = attack
    assert report["key"]["files_read"] > 0 and report["key"]["texts"] > 10  # the search really ran
    candidates = report["key"]["candidates"]
    assert KEY not in candidates and KEY not in json.dumps(report), "the API key reached the sandbox"
    assert report["key"]["placeholder"] in candidates  # the search does find keys it can see
    assert report["key"]["placeholder"] and report["key"]["placeholder"] != KEY
    assert "header: Bearer ***" in json.dumps(host["upstream"]) or host["upstream"]["count"] >= 1
    for path in host["episode"].rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), f"the key is in the episode's records: {path}"


def test_no_address_but_the_gateway_is_reachable(attack):
    result, report, host = attack
    direct = report["reach"]["direct"]
    assert all(str(v).startswith("ERR:") for v in direct.values()), direct
    assert host["connections"] == 0, "the sandbox reached a TCP server on the host's loopback"
    proxy = report["reach"]["proxy"]
    assert all(" 404 " in line or " 501 " in line or " 400 " in line for line in proxy.values()), proxy
    assert report["reach"]["routes"] == [] and set(report["reach"]["interfaces"]) <= {"lo"}
    # the one real request upstream is the chat call the attacker made through the gateway
    assert host["upstream"]["count"] == 1 and host["upstream"]["requests"][0]["model"] == "scripted-model"


def test_the_validation_endpoint_gives_no_score(attack):
    result, report, host = attack
    answers = report["validation"]
    assert len(set(answers.values())) == 1, f"different answers for different predictions: {answers}"
    answer = json.loads(answers["mean"])
    assert answer == {"result": "Submission is valid.", "valid": True, "errors": []}


def test_nothing_is_written_outside_the_allowed_folders(attack):
    result, report, host = attack
    outside, inside = report["writes"]["outside"], report["writes"]["inside"]
    assert all(str(v).startswith("ERR:") for v in outside.values()), {k: v for k, v in outside.items()
                                                                      if not str(v).startswith("ERR:")}
    assert all(v == "written" for v in inside.values()), inside  # the allowed folders are writable
    assert {p.name: p.read_bytes() for p in host["public"].iterdir()} == host["public_before"]
    instructions = (host["episode"] / "home" / "instructions.txt").read_text()
    assert "probe" not in instructions
    # the symlink to the private answers left as the submission was removed, not graded
    assert not result.valid and result.final_step is None
    assert not (host["episode"] / "steps" / "000" / "submission.csv").exists()


def test_no_process_outlives_the_episode(attack):
    result, report, host = attack
    assert report["daemon_started"], "the attacker could not start its background process"
    beat = host["episode"] / "logs" / "beat"
    first = beat.read_text()
    time.sleep(0.5)
    assert beat.read_text() == first, "a process of the agent kept running after the episode"
    checks = {c["name"]: c for c in result.integrity["checks"]}
    if is_privileged():
        assert checks["no_leftover_processes"]["passed"], checks
        assert processes_of(sandbox_uid(host["episode"] / "workspace")) == []
    assert result.ended_by == "exit"


@pytest.mark.parametrize("option", ["binds", "agent_dir"])
def test_binding_or_copying_the_dojoflow_home_is_refused(settings, option):
    from dojoflow.errors import SandboxError

    folder = str(settings.home.parent) if option == "binds" else str(settings.home / "data")
    value = [folder] if option == "binds" else folder
    config = EpisodeConfig(task_id=TASK, agent="x", sandbox="bwrap", track=False,
                           command={"command": "true", "gateway": False, option: value})
    with pytest.raises(SandboxError, match="would expose the dojoflow home"):
        drive_episode(config)
