"""Every built-in solver streams through `surrogate online`'s runner: the steps that reach a
real server over loopback are the solver's own rollout from the same parameters, exactly."""

import numpy as np
import pytest

from surrogate.evaluation.rollout import rollout
from surrogate.online.buffer import FIFOBuffer
from surrogate.online.builtin import BUILTINS, run_builtin
from surrogate.online.server import StreamServer
from tests.online.test_stream import wait_for

RESOLUTION = {"cylinder": 64}  # the others resolve their middle case on 32 points


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_a_builtin_solver_streams_its_own_rollout(name):
    spec, n, steps = BUILTINS[name], RESOLUTION.get(name, 32), 3
    params = {k: lo + 0.3 * (hi - lo) for k, (lo, hi) in spec.space.items()}
    with StreamServer(FIFOBuffer(capacity_bytes=10**8)) as server:
        run_builtin(server.data_address, server.control_address, f"{name}-0", params, None, name, 7, n, spec.dt, steps)
        wait_for(lambda: server.metrics()["finished"] == 1)
        got = [server.sample() for _ in range(steps)]
    solver, state = spec.make(params, n, spec.dt, 7)
    truth = rollout(solver, state, steps).fields[0]  # (T, C, *space)
    for k, (prev, cur) in enumerate(got):
        assert (prev.step, cur.step) == (k, k + 1) and cur.parameters == pytest.approx(params)
        assert cur.time == pytest.approx((k + 1) * spec.dt)
        for c, field in enumerate(state.field_names):
            np.testing.assert_allclose(cur.fields[field], truth[k + 1, c].float().numpy(), rtol=1e-6, atol=1e-6)
