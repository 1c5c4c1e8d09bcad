"""Faults with real processes on loopback: a solver killed mid-stream, a silent solver, a
server restarted from its checkpoint. Nothing may be counted twice."""

import os
import sys
import time

import cloudpickle
import numpy as np
import pytest
import torch

from surrogate.online.buffer import FIFOBuffer, ReservoirBuffer
from surrogate.online.client import OnlineClient
from surrogate.online.launcher import Launcher
from surrogate.online.server import StreamServer
from tests.online.test_stream import wait_for

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the Dask workers cannot import tests/


def wait_file(path, timeout=600.0):
    """Wait until `path` exists (an event the test sends to the worker)."""
    t0 = time.monotonic()
    while not os.path.exists(path) and time.monotonic() - t0 < timeout:
        time.sleep(0.01)


def stream_steps(data, control, sim, n_steps, marker, fault):
    """Streams steps 0..n_steps of a tiny field; on its first run (no marker file yet), after
    step 3, it dies (fault="die": the worker process exits, once the test has seen steps 0-3
    arrive and written MARKER.go) or hangs silently (fault="hang", until MARKER.release)."""
    first = not os.path.exists(marker)
    open(marker, "a").close()
    with OnlineClient(data, control, sim, {"nu": 1.0}) as c:
        for step in range(n_steps + 1):
            c.send(step, 0.1 * step, {"u": np.full((4, 4), step, np.float32)})
            if first and step == 3:
                c.flush()  # steps 0-3 leave the client's batch
                if fault == "die":
                    wait_file(marker + ".go")
                    os._exit(1)
                wait_file(marker + ".release")
                return sim
    return sim


@pytest.fixture(scope="module")
def launcher():
    launcher = Launcher(n_workers=2)
    yield launcher
    launcher.close()


def test_killed_solver_is_rerun_and_nothing_counted_twice(launcher, tmp_path):
    with StreamServer(FIFOBuffer(capacity_bytes=10**6)) as server:
        launcher.submit("killed", stream_steps, server.data_address, server.control_address, "killed", 9, str(tmp_path / "m"), "die")
        wait_for(lambda: server.metrics()["received"] == 4, timeout=90)
        (tmp_path / "m.go").touch()  # steps 0-3 arrived: now the worker dies
        # "done" (control socket) may overtake the last steps (data socket): wait for both
        wait_for(lambda: server.metrics()["finished"] == 1 and server.metrics()["received"] == 10, timeout=90)
        m = server.metrics()
        assert m["received"] == 10 and m["pairs"] == 9 and m["duplicates"] == 4  # steps 0-3 came twice
        steps = sorted(server.sample()[1].step for _ in range(9))
        assert steps == list(range(1, 10))


def test_silent_solver_is_resubmitted(launcher, tmp_path):
    with StreamServer(FIFOBuffer(capacity_bytes=10**6)) as server:
        launcher.submit("silent", stream_steps, server.data_address, server.control_address, "silent", 7, str(tmp_path / "m"), "hang")
        wait_for(lambda: server.metrics()["received"] == 4, timeout=60)
        redone: list[str] = []
        wait_for(lambda: redone.extend(launcher.watch(dict(server.last_seen), silent_s=1.0)) or redone, timeout=30)
        assert redone == ["silent"] and launcher.resubmitted == {"silent": 1}
        wait_for(lambda: server.metrics()["finished"] == 1 and server.metrics()["received"] == 8, timeout=60)
        m = server.metrics()
        assert m["received"] == 8 and m["pairs"] == 7 and m["duplicates"] == 4
    (tmp_path / "m.release").touch()  # the cancelled first run may end now


def test_finished_simulations_are_not_rerun(launcher):
    sims = [("ns2d-5-0", {"viscosity": 1e-3}), ("ns2d-5-1", {"viscosity": 2e-3})]
    launcher.submit_ensemble([("tcp://127.0.0.1:9", "tcp://127.0.0.1:9")], sims, lambda *a: (print, *a), skip={"ns2d-5-0", "ns2d-5-1"})
    assert launcher.skipped == ["ns2d-5-0", "ns2d-5-1"] and "ns2d-5-0" not in launcher.futures


def send(server, sim, steps, done):
    """Stream `steps` of simulation `sim`; say "done" only when `done` (else leave as if cut off)."""
    c = OnlineClient(server.data_address, server.control_address, sim, {"nu": 2.0}).__enter__()
    for step in steps:
        c.send(step, 0.5 * step, {"u": np.full((3, 5), step + 100 * (sim == "b"), np.float64)})
    c.heartbeat()
    c.__exit__(None, None, None) if done else c.__exit__(RuntimeError, RuntimeError("cut off"), None)


@pytest.mark.parametrize("buffer_cls", [FIFOBuffer, ReservoirBuffer])
def test_server_restarts_from_its_checkpoint(tmp_path, buffer_cls):
    with StreamServer(buffer_cls(capacity_bytes=10**6, seed=1)) as first:
        send(first, "a", range(6), done=True)
        send(first, "b", range(4), done=False)
        wait_for(lambda: first.metrics()["received"] == 10)
        first.sample()  # training has used one pair
        path = tmp_path / "last.pt"
        torch.save({"source": {"batches": 1, "server": first.state_dict()}}, path)
        before = [(p.simulation_id, p.step, q.step) for p, q in first.buffer_items()]
    state = torch.load(path, weights_only=True)["source"]["server"]  # what a resumed run reads
    with StreamServer(buffer_cls(capacity_bytes=10**6, seed=1)) as second:
        second.load_state_dict(state)
        assert second.finished == {"a"} and second.registered == {"a", "b"}
        assert second.wait_schema(0) == first.schema  # a resumed stream keeps its schema, before any new step
        assert [(p.simulation_id, p.step, q.step) for p, q in second.buffer_items()] == before
        m = second.metrics()
        assert (m["received"], m["pairs"]) == (10, 8)
        send(second, "b", range(8), done=True)  # the unfinished simulation streams again from step 0
        wait_for(lambda: second.metrics()["finished"] == 2 and second.metrics()["received"] == 14)
        m = second.metrics()
        assert (m["received"], m["pairs"], m["duplicates"]) == (14, 12, 4)
        pairs = [second.sample() for _ in range(3)] if buffer_cls is FIFOBuffer else []
        for p, q in pairs:
            assert q.step == p.step + 1 and float(q.fields["u"][0, 0]) == q.step + 100 * (q.simulation_id == "b")


def test_batch_system_cluster_is_built_from_the_config(monkeypatch):
    """dask-jobqueue writes the batch script; no batch system here, so no job is submitted."""
    from surrogate.errors import InputError
    from surrogate.online.launcher import jobqueue_cluster

    cluster = jobqueue_cluster("slurm", {"cores": 2, "memory": "4GB", "walltime": "00:30:00", "queue": "short"})
    try:
        script = cluster.job_script()
        assert "#SBATCH -p short" in script and "--cpus-per-task=2" in script and "#SBATCH -t 00:30:00" in script
    finally:
        cluster.close()
    with pytest.raises(InputError, match="stream.jobqueue 'slurmm'"):
        jobqueue_cluster("slurmm", {})
    with pytest.raises(InputError, match="jobqueue_options for pbs"):
        jobqueue_cluster("pbs", {"cores": 1, "memory": "1GB", "no_such_option": 3})


PROBE = """
import sys
from distributed import Client
from distributed.security import Security
address = sys.argv[1]
for label, addr, kwargs in [
    ("no credentials", address, {}),
    ("plain tcp", address.replace("tls://", "tcp://"), {}),
    ("other credentials", address, {"security": Security.temporary()}),
]:
    try:
        client = Client(addr, timeout=10, **kwargs)
        print(label, "ran code:", client.submit(int, "42").result())
    except Exception as e:
        print(label, "refused:", type(e).__name__)
"""


def test_the_launchers_scheduler_refuses_another_process_without_its_credentials(launcher):
    """The scheduler runs any code its clients submit; its TLS credentials live only in the
    launcher's memory, so another process (any other local user) cannot use it."""
    import subprocess

    address = launcher.client.scheduler.address
    assert address.startswith("tls://127.0.0.1:")
    assert launcher.client.submit(int, "42").result() == 42  # the launcher itself can
    probe = subprocess.run([sys.executable, "-c", PROBE, address], capture_output=True, text=True, timeout=300)
    refused = [line.split(" refused:")[0] for line in probe.stdout.strip().splitlines()]
    assert refused == ["no credentials", "plain tcp", "other credentials"], probe.stdout + probe.stderr
