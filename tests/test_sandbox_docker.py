"""The docker backend: the exact container requests (with a fake engine client, no Docker needed), the
container's lifecycle (always force-removed; killed on the wall clock), error handling, and a live run
when an engine answers."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

docker = pytest.importorskip("docker")

from dojoflow.infra.sandbox import ExecutionLimits, ExecutionRequest, python_command  # noqa: E402
from dojoflow.infra.sandbox.docker_backend import (  # noqa: E402
    DEFAULT_IMAGE,
    DockerBackend,
    cleanup,
    docker_available,
)


# -- a fake docker client ---------------------------------------------------------------------------------
class FakeContainer:
    def __init__(self, client: FakeClient, kwargs: dict) -> None:
        self.client, self.kwargs, self.id = client, kwargs, f"c{len(client.created)}"
        self.stdout: list[bytes] = list(client.stdout)
        self.stderr: list[bytes] = list(client.stderr)
        self.exit_code = client.exit_code
        self.never_finishes = client.never_finishes
        self.oom_killed = client.oom_killed
        self.done = threading.Event()
        self.started = self.killed = False
        self.removed: dict | None = None
        self.attrs: dict = {}
        self.wait_calls: list[dict] = []

    def start(self) -> None:
        self.started = True
        if self.client.fail_on_start:
            raise docker.errors.APIError("start failed")
        if not self.never_finishes:
            self.done.set()

    def logs(self, stdout=True, stderr=True, stream=False, follow=None, since=None, **_):
        assert stream and follow and stdout != stderr
        chunks = self.stdout if stdout else self.stderr

        def gen():
            yield from chunks
            self.done.wait()  # a follow stream ends when the container stops

        return gen()

    def wait(self, **kwargs) -> dict:
        self.wait_calls.append(kwargs)
        self.done.wait()
        return {"StatusCode": 137 if self.killed else self.exit_code, "Error": None}

    def kill(self) -> None:
        self.killed = True
        self.client.kill_times.append(time.monotonic())
        self.done.set()

    def reload(self) -> None:
        self.attrs = {"State": {"OOMKilled": self.oom_killed, "ExitCode": 137 if self.killed else self.exit_code}}

    def remove(self, force=False, v=False) -> None:
        self.removed = {"force": force, "v": v}
        self.done.set()


class FakeContainers:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def create(self, **kwargs) -> FakeContainer:
        if self.client.missing_image:
            raise docker.errors.ImageNotFound(f"No such image: {kwargs['image']}")
        container = FakeContainer(self.client, kwargs)
        self.client.created.append(container)
        return container

    def run(self, *a, **k):  # pragma: no cover - the backend must never use run() (it pulls)
        raise AssertionError("containers.run() pulls images; the backend must use create()")

    def list(self, all=False, filters=None):
        self.client.list_filters.append((all, filters))
        return [c for c in self.client.created if c.removed is None]


class FakeImages:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def pull(self, *a, **k):  # pragma: no cover - must never be called
        self.client.pulled.append(a)
        raise AssertionError("the backend must never pull images")


class FakeClient:
    def __init__(self, stdout=(b"hello\n",), stderr=(), exit_code=0, never_finishes=False, oom_killed=False,
                 missing_image=False, ping_error=None, fail_on_start=False) -> None:
        self.stdout, self.stderr, self.exit_code = stdout, stderr, exit_code
        self.never_finishes, self.oom_killed, self.missing_image = never_finishes, oom_killed, missing_image
        self.ping_error, self.fail_on_start = ping_error, fail_on_start
        self.created: list[FakeContainer] = []
        self.pulled: list = []
        self.kill_times: list[float] = []
        self.list_filters: list = []
        self.containers = FakeContainers(self)
        self.images = FakeImages(self)

    def ping(self) -> bool:
        if self.ping_error is not None:
            raise self.ping_error
        return True

    def version(self) -> dict:
        return {"Version": "fake"}


@pytest.fixture
def episode(tmp_path) -> tuple[Path, Path]:
    workspace = tmp_path / "episodes" / "ep-42" / "workspace"
    workspace.mkdir(parents=True)
    (workspace / "step_000.py").write_text("print('hello')\n")
    public = tmp_path / "public"
    public.mkdir()
    (public / "train.csv").write_text("a,b\n1,2\n")
    return workspace, public


def request_for(episode, **kw) -> ExecutionRequest:
    workspace, public = episode
    limits = kw.pop("limits", ExecutionLimits())
    return ExecutionRequest(python_command("step_000.py"), workspace, public, limits, **kw)


# -- the request ------------------------------------------------------------------------------------------
def test_create_kwargs_are_locked_down(episode):
    client = FakeClient()
    limits = ExecutionLimits(timeout_s=30, memory_mb=2048, max_processes=64, max_file_mb=100)
    result = DockerBackend(client=client, cpus=2).run(request_for(episode, limits=limits))
    assert result.ok, result
    assert result.backend == "docker" and result.isolated
    assert result.stdout == "hello\n" and result.exit_code == 0
    (container,) = client.created
    kw = container.kwargs
    workspace, public = episode
    assert kw["image"] == DEFAULT_IMAGE
    assert kw["command"] == ["python", "-u", "step_000.py"]  # the image's python, not the host's path
    assert kw["working_dir"] == "/workspace"
    assert kw["volumes"] == {str(workspace.resolve()): {"bind": "/workspace", "mode": "rw"},
                             str(public.resolve()): {"bind": "/workspace/data", "mode": "ro"}}
    assert kw["network_mode"] == "none"
    assert kw["read_only"] is True
    assert kw["tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=100m"}
    assert kw["mem_limit"] == "2048m" and kw["memswap_limit"] == "2048m"
    assert kw["nano_cpus"] == 2_000_000_000
    assert kw["pids_limit"] == 64
    uid, gid = (int(x) for x in kw["user"].split(":"))
    assert uid != 0 and gid != 0
    assert kw["cap_drop"] == ["ALL"]
    assert kw["security_opt"] == ["no-new-privileges"]
    assert kw["labels"] == {"dojoflow": "sandbox", "dojoflow.episode": "ep-42"}
    ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in kw["ulimits"]}
    assert ulimits["fsize"] == (100 * 1024 * 1024, 100 * 1024 * 1024)
    assert ulimits["nofile"][0] > 0 and ulimits["core"] == (0, 0)
    assert "device_requests" not in kw
    env = kw["environment"]
    assert env["HOME"] == "/workspace" and env["CUDA_VISIBLE_DEVICES"] == ""
    assert not any(key not in env for key in ("PATH", "OMP_NUM_THREADS"))
    assert not set(env) & {"DOJOFLOW_HOME", "PREFECT_HOME"}  # nothing from the host environment
    assert str(Path(sys.executable).parent) not in env["PATH"]
    # The data mount point is a real empty directory on the host; the container is started and removed.
    assert (workspace / "data").is_dir() and not (workspace / "data").is_symlink()
    assert container.started and container.removed == {"force": True, "v": True}
    assert not client.pulled


def test_gpu_device_request(episode):
    client = FakeClient()
    DockerBackend(client=client).run(request_for(episode, gpu=3))
    kw = client.created[0].kwargs
    (req,) = kw["device_requests"]
    assert isinstance(req, docker.types.DeviceRequest)
    assert req["DeviceIDs"] == ["3"] and req["Capabilities"] == [["gpu"]]
    assert kw["image"] == "dojoflow-sandbox-cuda:latest"
    assert kw["environment"]["CUDA_VISIBLE_DEVICES"] == "0"  # the only device the container sees


def test_images_and_cpus_from_environment(episode, monkeypatch):
    monkeypatch.setenv("DOJOFLOW_DOCKER_IMAGE", "my/cpu:1")
    monkeypatch.setenv("DOJOFLOW_DOCKER_CPUS", "0.5")
    client = FakeClient()
    DockerBackend(client=client).run(request_for(episode))
    assert client.created[0].kwargs["image"] == "my/cpu:1"
    assert client.created[0].kwargs["nano_cpus"] == 500_000_000


# -- lifecycle --------------------------------------------------------------------------------------------
def test_timeout_kills_on_time_and_removes(episode):
    client = FakeClient(never_finishes=True, stdout=(b"started\n",))
    started = time.monotonic()
    result = DockerBackend(client=client).run(request_for(episode, limits=ExecutionLimits(timeout_s=0.5)))
    elapsed = time.monotonic() - started
    assert result.timed_out and not result.ok and not result.oom
    assert client.kill_times and 0.45 <= client.kill_times[0] - started <= 2.0
    assert elapsed < 5
    (container,) = client.created
    assert container.killed and container.removed == {"force": True, "v": True}
    assert all(call.get("timeout") is None for call in container.wait_calls)
    assert "started" in result.stdout
    assert "timed out" in result.failure_message(ExecutionLimits(timeout_s=0.5))


def test_removed_when_the_engine_fails(episode):
    client = FakeClient(fail_on_start=True)
    result = DockerBackend(client=client).run(request_for(episode))
    assert result.error and "APIError" in result.error and not result.ok
    assert client.created[0].removed == {"force": True, "v": True}


def test_removed_when_something_raises(episode, monkeypatch):
    client = FakeClient()
    backend = DockerBackend(client=client)

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(backend, "_run_container", boom)
    result = backend.run(request_for(episode))
    assert result.error and "boom" in result.error
    assert client.created[0].removed == {"force": True, "v": True}


def test_missing_image_is_a_clear_error_without_pull(episode):
    client = FakeClient(missing_image=True)
    result = DockerBackend(client=client, image="dojoflow-sandbox:latest").run(request_for(episode))
    assert result.error and "dojoflow-sandbox:latest" in result.error
    assert "docker build -t dojoflow-sandbox -f infra/docker/Dockerfile ." in result.error
    assert not client.pulled and not client.created
    assert "could not run the code" in result.failure_message(ExecutionLimits())


def test_no_engine_is_a_clear_error(episode):
    client = FakeClient(ping_error=docker.errors.DockerException("Error while fetching server API version"))
    result = DockerBackend(client=client).run(request_for(episode))
    assert result.error and "no Docker engine answers" in result.error
    assert not client.created
    ok, reason = docker_available(client)
    assert not ok and "no Docker engine answers" in reason
    assert docker_available(FakeClient()) == (True, "Docker engine fake answers")


def test_oom_killed_is_reported(episode):
    client = FakeClient(exit_code=137, oom_killed=True, stdout=())
    result = DockerBackend(client=client).run(request_for(episode, limits=ExecutionLimits(memory_mb=256)))
    assert result.oom and result.exit_code == 137 and not result.timed_out
    assert "out of memory" in result.failure_message(ExecutionLimits(memory_mb=256))


def test_exit_status_and_stderr_are_separate(episode):
    client = FakeClient(stdout=(b"out\n",), stderr=(b"Traceback...\nValueError: bad\n",), exit_code=1)
    result = DockerBackend(client=client).run(request_for(episode))
    assert result.exit_code == 1 and result.stdout == "out\n" and "ValueError: bad" in result.stderr
    assert not result.oom and "ValueError: bad" in result.failure_message(ExecutionLimits())


def test_logs_are_truncated_head_and_tail(episode):
    chunks = [b"HEAD" + b"x" * 996] + [b"y" * 1000] * 50 + [b"z" * 996 + b"TAIL"]
    client = FakeClient(stdout=chunks)
    limits = ExecutionLimits(keep_output_bytes=2000, max_output_bytes=10**6)
    result = DockerBackend(client=client).run(request_for(episode, limits=limits))
    assert result.stdout_bytes == 52_000 and not result.output_limited
    assert result.stdout.startswith("HEAD") and result.stdout.endswith("TAIL")
    assert "bytes of output omitted" in result.stdout and len(result.stdout) < 2200


def test_output_cap_kills_the_container(episode):
    client = FakeClient(stdout=[b"x" * 10_000] * 20, never_finishes=True)
    limits = ExecutionLimits(timeout_s=10, keep_output_bytes=1000, max_output_bytes=50_000)
    started = time.monotonic()
    result = DockerBackend(client=client).run(request_for(episode, limits=limits))
    assert time.monotonic() - started < 5
    assert result.output_limited and not result.timed_out and client.created[0].killed
    assert client.created[0].removed is not None


def test_symlink_out_of_the_workspace_is_removed_after_the_step(episode, tmp_path):
    workspace, _ = episode
    secret = tmp_path / "answers.csv"
    secret.write_text("secret")

    client = FakeClient()
    backend = DockerBackend(client=client)
    original = backend._run_container

    def run_and_link(container, request, start):
        (request.workspace / "submission.csv").symlink_to(secret)
        return original(container, request, start)

    backend._run_container = run_and_link
    assert backend.run(request_for(episode)).ok
    assert not (workspace / "submission.csv").exists() and not (workspace / "submission.csv").is_symlink()


def test_cleanup_removes_labelled_containers():
    client = FakeClient()
    leftovers = [client.containers.create(image="x"), client.containers.create(image="y")]
    removed = cleanup(client=client)
    assert removed == [c.id for c in leftovers] and all(c.removed["force"] for c in leftovers)
    assert client.list_filters == [(True, {"label": "dojoflow=sandbox"})]
    cleanup("dojoflow.episode=ep-1", client=client)
    assert client.list_filters[-1] == (True, {"label": "dojoflow.episode=ep-1"})


# -- a real engine ----------------------------------------------------------------------------------------
_AVAILABLE, _REASON = docker_available()


def _image_present(image: str) -> bool:
    try:
        docker.from_env(timeout=10).images.get(image)
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _AVAILABLE, reason=f"docker backend live tests need a Docker engine: {_REASON}")
class TestLiveDocker:
    @pytest.fixture(autouse=True)
    def _image(self):
        if not _image_present(DEFAULT_IMAGE):
            pytest.skip(f"image {DEFAULT_IMAGE} not built: "
                        "docker build -t dojoflow-sandbox -f infra/docker/Dockerfile .")
        yield
        cleanup("dojoflow.episode=ep-42")

    def test_real_step(self, episode):
        workspace, _ = episode
        (workspace / "step_000.py").write_text(
            "import os, socket, pandas as pd\n"
            "df = pd.read_csv('data/train.csv'); df.to_csv('submission.csv', index=False)\n"
            "print(os.getcwd(), os.getuid(), sorted(os.listdir('data')))\n"
            "try:\n    open('data/x', 'w')\nexcept OSError:\n    print('data read-only')\n"
            "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
            "except OSError:\n    print('no network')\n")
        result = DockerBackend().run(request_for(episode, limits=ExecutionLimits(timeout_s=60)))
        assert result.ok, result
        assert result.stdout.startswith("/workspace ") and "train.csv" in result.stdout
        assert "data read-only" in result.stdout and "no network" in result.stdout
        assert (workspace / "submission.csv").read_text().startswith("a,b")
        leftovers = docker.from_env().containers.list(all=True, filters={"label": "dojoflow.episode=ep-42"})
        assert not leftovers

    def test_real_timeout(self, episode):
        workspace, _ = episode
        (workspace / "step_000.py").write_text("import time\ntime.sleep(60)\n")
        started = time.monotonic()
        result = DockerBackend().run(request_for(episode, limits=ExecutionLimits(timeout_s=2)))
        assert result.timed_out and time.monotonic() - started < 20


# -- command agents (bring your own agent) through the docker backend ---------------------------------------
def test_whole_episode_request_mounts_and_stop_condition(episode, tmp_path):
    from dojoflow.infra.sandbox import Mount

    client = FakeClient(never_finishes=True)
    out = tmp_path / "submission"
    calls = []

    def stop_when():
        calls.append(1)
        return "budget spent" if len(calls) >= 3 else None

    workspace, public = episode
    request = ExecutionRequest(("/usr/bin/true",), workspace, None, ExecutionLimits(timeout_s=30),
                               workspace_inside="/home/agent", sealed=("/home",), stop_when=stop_when,
                               mounts=(Mount(public, "/home/data"), Mount(out, "/home/submission", writable=True)))
    started = time.monotonic()
    result = DockerBackend(client=client).run(request)
    assert result.stop_reason == "budget spent" and not result.timed_out and not result.ok
    assert time.monotonic() - started < 10
    kwargs = client.created[0].kwargs
    assert kwargs["working_dir"] == "/home/agent" and kwargs["network_mode"] == "none" and kwargs["read_only"]
    volumes = kwargs["volumes"]
    assert volumes[str(workspace.resolve())] == {"bind": "/home/agent", "mode": "rw"}
    assert volumes[str(public.resolve())] == {"bind": "/home/data", "mode": "ro"}
    assert volumes[str(out.resolve())] == {"bind": "/home/submission", "mode": "rw"} and out.is_dir()
    assert kwargs["environment"]["HOME"] == "/home/agent"


def test_command_agent_image_episode_uses_the_engine(settings, monkeypatch):
    from dojoflow.agents.external.runner import run_command_agent
    from dojoflow.agents.external.spec import CommandAgentSpec
    from dojoflow.dojo.env import MLEEnvironment

    client = FakeClient(stdout=(b"agent says hi\n",))
    env = MLEEnvironment("penguins-body-mass", sandbox=DockerBackend(client=client))
    env.reset()
    run = run_command_agent(env, CommandAgentSpec(image="my-agent:1", command="/start.sh", gateway=False), 60)
    env.close()
    (container,) = client.created
    kwargs = container.kwargs
    assert kwargs["image"] == "my-agent:1" and kwargs["network_mode"] == "none"
    assert kwargs["command"][:2] == ["python", "/opt/dojoflow/forward.py"]  # the image's interpreter
    assert kwargs["command"][-3:] == ["/bin/sh", "-c", "/start.sh"]
    binds = {v["bind"]: v["mode"] for v in kwargs["volumes"].values()}
    assert binds["/home/data"] == "ro" and binds["/home/submission"] == "rw" and binds["/run/dojoflow"] == "ro"
    assert binds["/home/instructions.txt"] == "ro" and binds["/opt/dojoflow"] == "ro"
    assert kwargs["environment"]["SUBMISSION_DIR"] == "/home/submission"
    assert run.ended_by == "exit" and run.final_step is None and "left no file" in run.final_reason
    assert "agent says hi" in (env.step_dir(0) / "stdout.txt").read_text()
