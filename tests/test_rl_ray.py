"""Rollouts on a local Ray cluster (a head node plus a worker node, separate processes on this machine):
one actor's process is killed mid-group; the group completes on the survivor with one record per rollout.
Slow (Ray start-up and warm sandboxes); skipped without the rl extra. Ports: 18700-18799."""

from __future__ import annotations

import os
import signal

import pytest

PORTS = {"head": 18700, "worker": 18750}


def _node_args(base: int, resource: str) -> dict:
    return {"num_cpus": 2, "resources": {resource: 2}, "include_dashboard": False,
            "node_manager_port": base + 1, "object_manager_port": base + 2, "min_worker_port": base + 10,
            "max_worker_port": base + 40, "dashboard_agent_listen_port": base + 3, "metrics_export_port": base + 4,
            "runtime_env_agent_port": base + 5, "metrics_agent_port": base + 6}


@pytest.mark.slow
def test_group_survives_a_killed_worker(session_home):
    ray = pytest.importorskip("ray", reason="the rl extra is not installed: pip install -e .[rl]")
    from ray.cluster_utils import Cluster

    from dojoflow.rl.config import RolloutConfig
    from dojoflow.rl.policy import ScriptedPolicy
    from dojoflow.rl.ray_rollouts import make_actors, run_group_ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    head_args = {**_node_args(PORTS["head"], "head"), "gcs_server_port": PORTS["head"]}
    cluster = Cluster(initialize_head=True, head_node_args=head_args)
    try:
        cluster.add_node(**_node_args(PORTS["worker"], "worker"))
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, runtime_env={"env_vars": {"DOJOFLOW_HOME": str(session_home)}})
        survivor = make_actors(1, resources={"head": 1}, num_cpus=0)[0]
        doomed = make_actors(1, resources={"worker": 1}, num_cpus=0)[0]
        doomed_pid = ray.get(doomed.pid.remote())
        assert ray.get(survivor.pid.remote()) != doomed_pid

        killed = []

        def kill_when_busy(record, busy) -> None:  # mid-group: the doomed actor is inside a rollout
            if not killed and doomed in busy:
                os.kill(doomed_pid, signal.SIGKILL)
                killed.append(record.index)

        group = run_group_ray([doomed, survivor], "iris-species", ScriptedPolicy(code_steps=1, sleep_s=2.0), 4,
                              config=RolloutConfig(max_steps=3), on_record=kill_when_busy)
        detail = [(r.index, r.worker, r.error) for r in group.records]
        assert killed and group.lost_actors == 1 and len(group.rerun) == 1, (killed, group.rerun, detail)
        assert [r.index for r in group.records] == [0, 1, 2, 3]  # nothing lost, nothing twice
        assert len({r.episode_id for r in group.records}) == 4
        assert all(r.error is None and r.final_reward > 0 for r in group.records), [
            (r.final_reward, r.step_rewards, r.completion[1]["content"][-600:]) for r in group.records]
        rerun = group.records[group.rerun[0]]
        assert rerun.worker.endswith(str(ray.get(survivor.pid.remote())))
    finally:
        ray.shutdown()
        cluster.shutdown()
