"""A stream server beyond 127.0.0.1 speaks CURVE: it refuses to bind without keys, takes the
Python and C clients that hold the launcher's keys, and no client without them."""

import subprocess

import numpy as np
import pytest
import zmq

from surrogate.errors import InputError
from surrogate.online.buffer import FIFOBuffer
from surrogate.online.client import OnlineClient, ServerUnavailable
from surrogate.online.curve import ClientKeys, load_or_create
from surrogate.online.server import StreamServer
from surrogate.training.stream import advertised_host
from tests.online.test_c_client import heat_example  # noqa: F401  (the compiled C solver, a fixture)
from tests.online.test_stream import wait_for


def test_binding_beyond_loopback_needs_keys():
    with pytest.raises(InputError, match="needs CURVE keys"):
        StreamServer(FIFOBuffer(capacity_bytes=10**6), host="0.0.0.0")


def test_keys_are_made_once_with_private_secrets(tmp_path):
    keys = load_or_create(tmp_path / "keys")
    again = load_or_create(tmp_path / "keys")
    assert keys == again and len(keys.public) == 40 and keys.client.server == keys.public
    for secret in (tmp_path / "keys" / "server.key_secret", tmp_path / "keys" / "clients" / "client.key_secret"):
        assert secret.stat().st_mode & 0o777 == 0o600


def test_the_advertised_host_is_what_remote_workers_reach():
    assert advertised_host("127.0.0.1", "") == "127.0.0.1"
    assert advertised_host("0.0.0.0", "node17.cluster") == "node17.cluster"
    assert advertised_host("0.0.0.0", "") not in ("0.0.0.0", "")  # this machine's name


def test_only_clients_with_the_keys_get_in(tmp_path, heat_example, monkeypatch):  # noqa: F811
    keys = load_or_create(tmp_path / "keys")
    with StreamServer(FIFOBuffer(capacity_bytes=10**7), host="0.0.0.0", curve=keys) as server:
        data, control = server.addresses("127.0.0.1")
        with OnlineClient(data, control, "python", {"kappa": 0.02}, curve=keys.client) as c:  # the C solver's schema
            for step in range(3):
                c.send(step, 0.1 * step, {"u": np.full(64, step, np.float64)})
        env = {"PATH": "/usr/bin:/bin", **keys.client.env()}
        run = subprocess.run([str(heat_example), data, control, "c", "5", "0.01"], env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        wait_for(lambda: server.metrics()["finished"] == 2)
        public, secret = zmq.curve_keypair()
        for name, curve in (("no keys", None), ("a key the server does not know", ClientKeys(keys.public, public, secret))):
            monkeypatch.delenv("SURROGATE_CURVE_SERVER", raising=False)
            with pytest.raises(ServerUnavailable):
                OnlineClient(data, control, name, curve=curve, timeout_ms=2000).__enter__()
        m = server.metrics()
        assert m["registered"] == 2 and m["received"] == 3 + 6 and m["bad"] == {}
