"""A Docker work pool for real: Prefect's docker worker (prefect-docker) runs the episode flow runs of a sweep in
containers of the worker image (``infra/docker/Dockerfile.worker``), against a Prefect server, an MLflow
tracking server and moto's S3 on this machine. One flow-run container is killed while its episode runs; the
sweep still completes, with that episode retried and every episode recorded exactly once in MLflow and in the
results table. Needs a live Docker-API engine with the worker image (``infra/docker/engine.sh up``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import boto3
import pytest
from service_stack import BIN, S3_CREDENTIALS, ServiceStack, post

from conftest import require_image

pytest.importorskip("prefect_docker")
pytestmark = [pytest.mark.integration, pytest.mark.slow]
BUCKET = "dojoflow-docker-pool"
IMAGE = "dojoflow-worker:latest"
POOL = "docker-pool"


@pytest.fixture
def stack(tmp_path, docker_engine, monkeypatch):
    require_image(docker_engine, IMAGE)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "test")
    services = ServiceStack(tmp_path, BUCKET)
    try:
        services.up()
        submit = services.submitter_env()
        # the flow-run containers: host networking (the services listen on 127.0.0.1), the stores' settings, the
        # local sandbox inside the container (the container is the isolation here), the image never pulled; no
        # streamed output: the worker's logs(follow=True) makes podman mark the running container exited
        variables = {"image": IMAGE, "image_pull_policy": "Never", "network_mode": "host", "auto_remove": False,
                     "stream_output": False,
                     "env": {**services.stores, **S3_CREDENTIALS, "DOJOFLOW_SANDBOX": "local",
                             "PREFECT_LOGGING_LEVEL": "WARNING"}}
        deploy = ("import json, sys\nfrom dojoflow.flows.deployment import deploy_episode_flow\n"
                  f"print(deploy_episode_flow({POOL!r}, 'dojoflow', json.loads(sys.argv[1]), pool_type='docker'))\n")
        subprocess.run([sys.executable, "-c", deploy, json.dumps(variables)], env=submit, check=True,
                       capture_output=True, timeout=180)
        home = {"DOJOFLOW_HOME": str(tmp_path / "worker")}
        worker = services.start([str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "docker",
                                 "--limit", "2"],
                                {**home, "DOCKER_HOST": os.environ["DOCKER_HOST"]} if "DOCKER_HOST" in os.environ
                                else home, "worker")
        yield {"env": submit, "ports": services.ports, "s3": services.s3, "worker": worker, "tmp": tmp_path,
               "client": docker_engine}
    finally:
        services.stop()
        for container in docker_engine.containers.list(all=True, filters={"label": "io.prefect.flow-run-id"}):
            container.remove(force=True)


def _flow_run_containers(client) -> list:
    return client.containers.list(filters={"label": "io.prefect.flow-run-id", "status": "running"})


def _state(api: str, run_id: str) -> str:
    return post(f"{api}/flow_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})[0]["state"]["type"]


def _kill_one_running_episode(client, api: str, sweep: subprocess.Popen) -> str | None:
    """Kill the container of the first flow run seen running (its episode started inside); its flow run id."""
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and sweep.poll() is None:
        running = {r["id"] for r in post(f"{api}/flow_runs/filter",
                                          {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}})}
        for container in _flow_run_containers(client):
            run_id = container.labels.get("io.prefect.flow-run-id")
            if run_id in running:
                container.kill()
                # once the worker has seen it die, remove it: the retry's flow run has the same name, and podman
                # reports the name clash without the "Conflict" on which prefect-docker picks another name
                end = time.monotonic() + 120
                while time.monotonic() < end and _state(api, run_id) == "RUNNING":
                    time.sleep(0.5)
                container.remove(force=True)
                return run_id
        time.sleep(0.5)
    return None


def test_sweep_through_a_docker_work_pool(stack):
    tmp, env, ports, client = stack["tmp"], stack["env"], stack["ports"], stack["client"]
    spec = tmp / "sweep.yaml"
    spec.write_text("name: docker-pool\nagents: [{name: baseline, options: {models: 1}}]\n"
                    "tasks: [penguins-body-mass, breast-cancer]\nseeds: 2\n"
                    "budget: {max_steps: 2, episode_timeout_s: 120}\nconcurrency: {episodes: 2}\nretries: 2\n"
                    "deployment: episode/dojoflow\n")
    sweep = subprocess.Popen([str(BIN / "dojoflow"), "sweep", "run", str(spec), "--json"], env=env,
                             stdout=subprocess.PIPE, stderr=(tmp / "sweep.log").open("w"), text=True)
    try:
        victim = _kill_one_running_episode(client, f"http://127.0.0.1:{ports['prefect']}/api", sweep)
        assert victim, "no flow-run container was seen running an episode: " + (tmp / "worker.log").read_text()[-3000:]
        out, _ = sweep.communicate(timeout=900)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    api = f"http://127.0.0.1:{ports['prefect']}/api"
    assert sweep.returncode == 0, (tmp / "sweep.log").read_text()[-3000:] + (tmp / "worker.log").read_text()[-3000:]
    states = json.loads(out)
    assert len(states) == 4 and all(s["state"] == "completed" for s in states), states

    # the killed flow run crashed and its episode ran again, in a new flow run
    assert _state(api, victim) in ("CRASHED", "FAILED")
    episode_runs = post(f"{api}/flow_runs/filter", {"flow_runs": {"deployment_id": {"is_null_": False}}})
    assert len(episode_runs) >= 5  # four episodes and at least one retry

    # every episode recorded exactly once: results rows and MLflow runs
    s3 = boto3.client("s3", endpoint_url=stack["s3"], region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="artifacts/results/").get("Contents", [])]
    assert len(keys) == 4
    from mlflow.tracking import MlflowClient

    mlflow = MlflowClient(env["DOJOFLOW_TRACKING_URI"])
    experiment = mlflow.get_experiment_by_name("dojoflow").experiment_id
    runs = mlflow.search_runs([experiment], "tags.`dojoflow.sweep_id` = 'docker-pool' and "
                                            "tags.`dojoflow.kind` = 'episode'")
    assert sorted(r.data.tags["dojoflow.episode_key"] for r in runs) == sorted(s["key"] for s in states)
    assert all(r.info.status == "FINISHED" for r in runs)
