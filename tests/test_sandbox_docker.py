"""The docker backend against a live Docker-API engine (a real dockerd, or podman's Docker API started by
``infra/docker/engine.sh``; the ``docker_engine`` fixture skips with the reason where neither answers): what a
container gets, measured from inside it; its lifecycle (always removed; killed on the wall clock and the output
cap); the engine's CPU and memory stats; error handling. Only the GPU device request, which needs a GPU and the
NVIDIA toolkit, is checked against a fake client (the exact request sent)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")

from dojoflow.infra.sandbox import ExecutionLimits, ExecutionRequest, Mount, python_command  # noqa: E402
from dojoflow.infra.sandbox.docker_backend import (  # noqa: E402
    DEFAULT_IMAGE,
    DockerBackend,
    cleanup,
    docker_available,
)

from conftest import require_image  # noqa: E402

EPISODE = "ep-docker-tests"


@pytest.fixture
def engine(docker_engine):
    """The live engine's client, with the sandbox image present; leftovers of these tests removed after."""
    require_image(docker_engine, DEFAULT_IMAGE)
    yield docker_engine
    cleanup(f"dojoflow.episode={EPISODE}", client=docker_engine)


@pytest.fixture
def episode(tmp_path) -> tuple[Path, Path]:
    workspace = tmp_path / "episodes" / EPISODE / "workspace"
    workspace.mkdir(parents=True)
    public = tmp_path / "public"
    public.mkdir()
    (public / "train.csv").write_text("a,b\n1,2\n")
    return workspace, public


def run_code(episode, code: str, backend: DockerBackend | None = None, **kw):
    workspace, public = episode
    (workspace / "step_000.py").write_text(code)
    limits = kw.pop("limits", ExecutionLimits(timeout_s=60))
    return (backend or DockerBackend()).run(ExecutionRequest(python_command("step_000.py"), workspace, public,
                                                             limits, **kw))


def leftovers(client) -> list:
    return client.containers.list(all=True, filters={"label": f"dojoflow.episode={EPISODE}"})


def report(result) -> dict:
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"no report: {result.stdout[-500:]} {result.stderr[-2000:]} {result.error}"
    return json.loads(lines[-1][len("RESULT "):])


# -- what the container gets, seen from inside ----------------------------------------------------------------
INSPECT = r'''
import json, os, resource, socket, pandas as pd
def attempt(fn):
    try:
        fn()
        return "done"
    except OSError as exc:
        return f"ERR:{exc.errno}"
def cgroup(*names):
    for name in names:
        for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"):
            try:
                return open(os.path.join(base, name)).read().strip()
            except OSError:
                pass
status = dict(ln.split(":", 1) for ln in open("/proc/self/status").read().splitlines())
pd.read_csv("data/train.csv").to_csv("submission.csv", index=False)
tmp = os.statvfs("/tmp")
out = dict(cwd=os.getcwd(), uid=os.getuid(), gid=os.getgid(), data=sorted(os.listdir("data")),
           write_data=attempt(lambda: open("data/x", "w")), write_root=attempt(lambda: open("/etc/x", "w")),
           write_tmp=attempt(lambda: open("/tmp/x", "w").write("x")),
           tmp_mb=tmp.f_blocks * tmp.f_frsize // (1 << 20),
           net=[ln.split(":")[0].strip() for ln in open("/proc/net/dev").read().splitlines()[2:]],
           connect=attempt(lambda: socket.create_connection(("10.0.0.1", 53), timeout=2)),
           cap_eff=status["CapEff"].strip(), no_new_privs=status.get("NoNewPrivs", "").strip(),
           memory=cgroup("memory.max", "memory.limit_in_bytes"), pids=cgroup("pids.max"),
           fsize=resource.getrlimit(resource.RLIMIT_FSIZE), core=resource.getrlimit(resource.RLIMIT_CORE),
           cpu=resource.getrlimit(resource.RLIMIT_CPU), nproc=resource.getrlimit(resource.RLIMIT_NPROC),
           hostname=socket.gethostname(), env=dict(os.environ))
print("RESULT " + json.dumps(out))
'''


def test_a_step_runs_locked_down(engine, episode, monkeypatch):
    monkeypatch.setenv("DOJOFLOW_TEST_SECRET", "host-secret")
    limits = ExecutionLimits(timeout_s=60, memory_mb=768, max_processes=64, max_file_mb=100, cpu_s=50)
    result = run_code(episode, INSPECT, limits=limits)
    assert result.ok and result.backend == "docker" and result.isolated, (result.stderr[-2000:], result.error)
    out = report(result)
    workspace, _ = episode
    assert out["cwd"] == "/workspace" and out["data"] == ["train.csv"]
    assert out["uid"] != 0 and out["gid"] != 0
    assert out["write_data"] == "ERR:30" and out["write_root"] == "ERR:30"  # EROFS: data and root read-only
    assert out["write_tmp"] == "done" and out["tmp_mb"] <= 100
    assert out["net"] == ["lo"] and out["connect"].startswith("ERR:")
    assert out["cap_eff"] == "0000000000000000" and out["no_new_privs"] == "1"
    assert int(out["memory"]) == 768 * 1024 * 1024 and out["pids"] == "64"
    assert out["fsize"] == [100 << 20, 100 << 20] and out["core"] == [0, 0] and out["cpu"][0] == 50
    assert out["nproc"] == [64, 64]
    assert out["hostname"] == "sandbox"
    env = out["env"]
    assert env["HOME"] == "/workspace" and env["CUDA_VISIBLE_DEVICES"] == ""
    assert "DOJOFLOW_TEST_SECRET" not in env and "DOJOFLOW_HOME" not in env and "DOCKER_HOST" not in env
    assert str(Path(sys.executable).parent) not in env["PATH"]
    assert (workspace / "submission.csv").read_text().startswith("a,b")
    assert (workspace / "data").is_dir() and not (workspace / "data").is_symlink()  # the mount point
    assert not leftovers(engine)


def test_the_host_interpreter_becomes_the_images(episode):
    kwargs = DockerBackend(cpus=2).create_kwargs(ExecutionRequest(python_command("step_000.py"), episode[0]))
    assert kwargs["command"] == ["python", "-u", "step_000.py"] and kwargs["nano_cpus"] == 2_000_000_000
    assert kwargs["labels"] == {"dojoflow": "sandbox", "dojoflow.episode": EPISODE}


def test_images_and_cpus_from_environment(episode, monkeypatch):
    monkeypatch.setenv("DOJOFLOW_DOCKER_IMAGE", "my/cpu:1")
    monkeypatch.setenv("DOJOFLOW_DOCKER_CPUS", "0.5")
    kwargs = DockerBackend().create_kwargs(ExecutionRequest(python_command("step_000.py"), episode[0]))
    assert kwargs["image"] == "my/cpu:1" and kwargs["nano_cpus"] == 500_000_000


def test_cpu_time_and_peak_memory_come_from_the_engine(engine, episode):
    code = ("import subprocess, sys, time\n"
            "busy = 'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 1.0: pass'\n"
            "subprocess.run([sys.executable, '-c', busy])  # a child: the whole tree is counted\n"
            "b = bytearray(200 << 20)\n"
            "for i in range(0, len(b), 4096):\n    b[i] = 1\n"
            "time.sleep(0.5)\n")
    result = run_code(episode, code)
    assert result.ok, result.stderr[-2000:]
    assert 1.0 <= result.cpu_s <= result.duration_s * 2 + 1, result.cpu_s
    assert 190 <= result.peak_memory_mb <= 400, result.peak_memory_mb


# -- lifecycle ------------------------------------------------------------------------------------------------
def test_timeout_kills_on_time_and_removes(engine, episode):
    started = time.monotonic()
    result = run_code(episode, "import time\nprint('started', flush=True)\ntime.sleep(60)\n",
                      limits=ExecutionLimits(timeout_s=2))
    assert result.timed_out and not result.ok and not result.oom
    assert 1.8 <= result.duration_s < 6 and time.monotonic() - started < 20
    assert "started" in result.stdout and "timed out" in result.failure_message(ExecutionLimits(timeout_s=2))
    assert not leftovers(engine)


def test_removed_when_the_engine_fails_to_start_it(engine, episode):
    workspace, _ = episode
    request = ExecutionRequest(("/no/such/program",), workspace, limits=ExecutionLimits(timeout_s=30))
    result = DockerBackend().run(request)
    assert result.error and "the Docker engine failed" in result.error and not result.ok
    assert not leftovers(engine)


def test_removed_when_something_raises(engine, episode, monkeypatch):
    backend = DockerBackend()

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(backend, "_run_container", boom)
    result = run_code(episode, "print(1)\n", backend)
    assert result.error and "boom" in result.error
    assert not leftovers(engine)


def test_missing_image_is_a_clear_error_without_pull(engine, episode):
    image = "dojoflow-no-such-image:0"
    result = run_code(episode, "print(1)\n", DockerBackend(image=image))
    assert result.error and image in result.error and "never pulled" in result.error
    assert "docker build" in result.error and "could not run the code" in result.failure_message(ExecutionLimits())
    assert not engine.images.list(name="dojoflow-no-such-image") and not leftovers(engine)


def test_no_engine_is_a_clear_error(engine, episode, tmp_path):
    dead = docker.DockerClient(base_url=f"unix://{tmp_path}/no-engine.sock", timeout=5, version="1.41")
    result = run_code(episode, "print(1)\n", DockerBackend(client=dead))
    assert result.error and "no Docker engine answers" in result.error
    ok, reason = docker_available(dead)
    assert not ok and "no Docker engine answers" in reason
    ok, reason = docker_available(engine)
    assert ok and reason.startswith("Docker engine ") and reason.endswith(" answers")


def test_an_oom_kill_no_stats_sample_saw_is_still_reported(engine, episode, monkeypatch):
    """The kernel's OOM counter, not the sampled memory: with no stats sample at all (a fast allocation killed
    between two samples), the kill is still reported as out of memory (podman on cgroup v1 does not say
    OOMKilled); a step that exits with status 137 itself, with no OOM kill counted, is not."""
    from dojoflow.infra.sandbox import docker_backend

    monkeypatch.setattr(docker_backend._Stats, "_read", lambda self: False)  # no sample is ever taken
    limits = ExecutionLimits(timeout_s=30, memory_mb=256)
    result = run_code(episode, "chunks = []\nwhile True:\n    chunks.append(bytearray(32 << 20))\n", limits=limits)
    assert result.oom and result.exit_code == 137 and result.peak_memory_mb == 0
    itself = run_code(episode, "import sys\nsys.exit(137)\n", limits=limits)
    assert itself.exit_code == 137 and not itself.oom


def test_oom_killed_is_reported(engine, episode):
    limits = ExecutionLimits(timeout_s=30, memory_mb=256)
    result = run_code(episode, "chunks = []\nwhile True:\n    chunks.append(bytearray(32 << 20))\n", limits=limits)
    assert result.oom and result.exit_code == 137 and not result.timed_out, (result.exit_code, result.stderr)
    assert "out of memory" in result.failure_message(limits)
    # the stats are sampled (test_cpu_time_and_peak_memory_come_from_the_engine): a fast allocation can be killed
    # before a sample sees it, so only the bound is checked here; the kernel's OOM counter still reports the kill
    assert result.peak_memory_mb <= 256 + 64


def test_exit_status_and_stderr_are_separate(engine, episode):
    result = run_code(episode, "import sys\nprint('out')\nsys.stderr.write('Traceback...\\nValueError: bad\\n')\n"
                               "sys.exit(3)\n")
    assert result.exit_code == 3 and result.stdout == "out\n" and "ValueError: bad" in result.stderr
    assert not result.oom and "ValueError: bad" in result.failure_message(ExecutionLimits())


def test_logs_are_truncated_head_and_tail(engine, episode):
    code = ("import sys\nw = sys.stdout.write\nw('HEAD' + 'x' * 996)\n"
            "for _ in range(50):\n    w('y' * 1000)\nw('z' * 996 + 'TAIL')\n")
    limits = ExecutionLimits(timeout_s=60, keep_output_bytes=2000, max_output_bytes=10**6)
    result = run_code(episode, code, limits=limits)
    assert result.stdout_bytes == 52_000 and not result.output_limited
    assert result.stdout.startswith("HEAD") and result.stdout.endswith("TAIL")
    assert "bytes of output omitted" in result.stdout and len(result.stdout) < 2200


def test_output_cap_kills_the_container(engine, episode):
    limits = ExecutionLimits(timeout_s=30, keep_output_bytes=1000, max_output_bytes=50_000)
    started = time.monotonic()
    result = run_code(episode, "import sys, time\nwhile True:\n    sys.stdout.write('x' * 10000)\n"
                               "    sys.stdout.flush()\n    time.sleep(0.01)\n", limits=limits)
    assert time.monotonic() - started < 20
    assert result.output_limited and not result.timed_out and not leftovers(engine)


def test_symlink_out_of_the_workspace_is_removed_after_the_step(engine, episode, tmp_path):
    workspace, _ = episode
    secret = tmp_path / "answers.csv"
    secret.write_text("secret")
    result = run_code(episode, f"import os\nos.symlink({str(secret)!r}, 'submission.csv')\n")
    assert result.ok, result.stderr
    assert not (workspace / "submission.csv").exists() and not (workspace / "submission.csv").is_symlink()


def test_cleanup_removes_labelled_containers(engine):
    labels = {"dojoflow": "sandbox", "dojoflow.episode": EPISODE}
    made = [engine.containers.create(DEFAULT_IMAGE, ["true"], labels=labels, network_mode="none")
            for _ in range(2)]
    other = engine.containers.create(DEFAULT_IMAGE, ["true"], labels={"dojoflow.episode": "other"},
                                     network_mode="none")
    try:
        removed = cleanup(f"dojoflow.episode={EPISODE}")
        assert sorted(removed) == sorted(c.id for c in made) and not leftovers(engine)
        engine.containers.get(other.id)  # a container of another episode stays
    finally:
        other.remove(force=True)


# -- command agents (bring your own agent) through the docker backend -------------------------------------------
def test_whole_episode_request_mounts_and_stop_condition(engine, episode, tmp_path):
    workspace, public = episode
    out = tmp_path / "submission"
    calls = []

    def stop_when():
        calls.append(1)
        return "budget spent" if (out / "seen").exists() and len(calls) >= 3 else None


    script = ("pwd > /home/submission/pwd; echo $HOME >> /home/submission/pwd;"
              " ls /home/data > /home/submission/seen.tmp;"
              " (touch /home/data/x 2>/dev/null && echo writable || echo read-only) >> /home/submission/seen.tmp;"
              " mv /home/submission/seen.tmp /home/submission/seen; sleep 60")
    request = ExecutionRequest(("/bin/sh", "-c", script), workspace, None, ExecutionLimits(timeout_s=60),
                               workspace_inside="/home/agent", sealed=("/home",), stop_when=stop_when,
                               mounts=(Mount(public, "/home/data"), Mount(out, "/home/submission", writable=True)))
    started = time.monotonic()
    result = DockerBackend().run(request)
    assert result.stop_reason == "budget spent" and not result.timed_out and not result.ok
    assert time.monotonic() - started < 30
    assert (out / "pwd").read_text().split() == ["/home/agent", "/home/agent"]
    assert (out / "seen").read_text().split() == ["train.csv", "read-only"]
    assert not leftovers(engine)


def test_command_agent_image_episode_uses_the_engine(engine, settings):
    from dojoflow.agents.external.runner import run_command_agent
    from dojoflow.agents.external.spec import CommandAgentSpec
    from dojoflow.dojo.env import MLEEnvironment

    env = MLEEnvironment("penguins-body-mass", sandbox=DockerBackend())
    env.reset()
    try:
        spec = CommandAgentSpec(image=DEFAULT_IMAGE, command="echo agent says hi; ls /home/data", gateway=False)
        run = run_command_agent(env, spec, 60)
    finally:
        env.close()
    assert run.ended_by == "exit" and run.final_step is None and "left no file" in run.final_reason
    stdout = (env.step_dir(0) / "stdout.txt").read_text()
    assert "agent says hi" in stdout and "train.csv" in stdout


# -- the GPU device request: needs a GPU and the NVIDIA toolkit, so checked against a fake client ---------------
class _FakeContainer:
    """Just enough of a container for one step that exits at once."""

    id = "fake"
    attrs: dict = {}

    def __init__(self, kwargs: dict) -> None:
        self.kwargs = kwargs
        self.removed = False

    def start(self) -> None: ...

    def attach(self, **kw):
        return iter([b"gpu step\n"] if kw.get("stdout") else [])

    def wait(self, **_):
        return {"StatusCode": 0}

    def stats(self, **_):
        raise docker.errors.NotFound("gone")

    def kill(self) -> None: ...

    def reload(self) -> None:
        self.attrs = {"State": {"OOMKilled": False, "ExitCode": 0}}

    def remove(self, **_) -> None:
        self.removed = True


class _FakeClient:
    def __init__(self) -> None:
        self.created: list[_FakeContainer] = []
        client = self

        class Containers:
            def create(self, **kwargs):
                client.created.append(_FakeContainer(kwargs))
                return client.created[-1]

        self.containers = Containers()

    def ping(self) -> bool:
        return True


def test_gpu_device_request(episode):
    client = _FakeClient()
    workspace, public = episode
    (workspace / "step_000.py").write_text("print('gpu step')\n")
    result = DockerBackend(client=client).run(ExecutionRequest(python_command("step_000.py"), workspace, public,
                                                               ExecutionLimits(), gpu=3))
    assert result.ok and result.stdout == "gpu step\n"
    (container,) = client.created
    kw = container.kwargs
    (req,) = kw["device_requests"]
    assert isinstance(req, docker.types.DeviceRequest)
    # the exact request the engine API receives (`docker run --gpus device=3`)
    assert dict(req) == {"Driver": "", "Count": 0, "DeviceIDs": ["3"], "Capabilities": [["gpu"]], "Options": {}}
    assert kw["image"] == "dojoflow-sandbox-cuda:latest"
    assert kw["environment"]["CUDA_VISIBLE_DEVICES"] == "0"  # the only device the container sees
    assert container.removed
