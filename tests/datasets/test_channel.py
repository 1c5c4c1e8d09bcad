"""Turbulent channel adapters: both layouts read and convert; LES filtering is exact where it must be."""

import h5py
import numpy as np
import pytest

from surrogate.datasets.channel import BOX, authors_y, chebyshev_y, filter_to_les, read_dns_h5, read_factformer_npy, write_channel_store
from surrogate.datasets.store import GridStore
from surrogate.errors import InputError


def factformer_array(tmp_path, shape=(2, 3, 8, 9, 4, 4), name="channel.npy"):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype(np.float32)
    np.save(tmp_path / name, a)
    return a


def test_factformer_layout_converts_to_the_store(tmp_path):
    """An array in the authors' layout and naming (their notebook loads data[..., 0:3] as u, v, w):
    channels land in order, y is the authors' equispaced grid unless a y file sits beside the
    array, dt must be stated, and the split is theirs (the last trajectory tests, 80% train)."""
    name = "Retau180_dim21x3x8x9x4x4_dT200.npy"
    a = factformer_array(tmp_path, (21, 3, 8, 9, 4, 4), name)
    with pytest.raises(InputError, match="no time step \\(the .npy layout carries none\\); give it \\(--dt\\)"):
        read_factformer_npy(tmp_path / name)
    data = read_factformer_npy(tmp_path / name, dt=0.2)
    np.testing.assert_allclose(data.y, np.linspace(0, 2, 9))
    assert data.y_source.startswith("the authors' equispaced") and data.dt == 0.2
    assert data.x[1] == pytest.approx(BOX[0] / 8) and data.z[1] == pytest.approx(BOX[2] / 4)
    path = write_channel_store(data, tmp_path / "channel.h5", re_tau=180.0)
    store = GridStore(path)
    traj = store.read(20, 0, 3)  # (T, C, Nx, Ny, Nz): p, then velocity_x/y/z
    assert store.schema.channel_names == ("p", "velocity_x", "velocity_y", "velocity_z")
    np.testing.assert_allclose(traj[:, 0], a[20, ..., 3])
    np.testing.assert_allclose(traj[:, 1:], np.moveaxis(a[20, ..., :3], -1, 1))
    np.testing.assert_allclose(store.schema.coords["y"], np.linspace(0, 2, 9))
    assert store.dt == pytest.approx(0.2) and store.params[:, 0].tolist() == [180.0] * 21
    splits = {k: list(v) for k, v in store.splits.items()}
    assert splits == {"train": list(range(16)), "valid": [16, 17, 18, 19], "test": [20]}
    np.save(tmp_path / "Retau180_dim21x3x8x9x4x4_dT200_y.npy", chebyshev_y(9))  # a y file beside the array wins
    data = read_factformer_npy(tmp_path / name, dt=0.2)
    np.testing.assert_allclose(data.y, chebyshev_y(9))
    assert data.y_source.endswith("_dT200_y.npy") and not np.allclose(authors_y(9), chebyshev_y(9))


def test_dns_cutout_layout(tmp_path):
    rng = np.random.default_rng(1)
    x, y, z = np.linspace(0, 1, 6, endpoint=False), np.sort(rng.uniform(0.01, 1.99, 7)), np.linspace(0, 1, 4, endpoint=False)
    with h5py.File(tmp_path / "dns.h5", "w") as h:
        for f in ("u", "v", "w", "p"):
            h[f] = rng.standard_normal((5, 6, 7, 4))
        h["x"], h["y"], h["z"] = x, y, z
        h["t"] = 0.05 * np.arange(5) + 3.0
    data = read_dns_h5(tmp_path / "dns.h5")
    assert data.fields.shape == (1, 5, 6, 7, 4, 4) and data.dt == pytest.approx(0.05)
    with pytest.raises(InputError, match="dt 0.1 given, the file says 0.05"):
        read_dns_h5(tmp_path / "dns.h5", dt=0.1)
    with h5py.File(tmp_path / "dns.h5", "r") as h:
        np.testing.assert_allclose(data.fields[0, ..., 2], h["w"][()])


def test_les_filters(tmp_path):
    nx, ny, nz = 16, 9, 8
    x = np.arange(nx) / nx * 2 * np.pi
    z = np.arange(nz) / nz * 2 * np.pi
    y = chebyshev_y(ny)
    low = np.cos(2 * x)[:, None, None] * y[None, :, None] * np.ones(nz)  # resolved on 8 points, linear in y
    high = np.cos(6 * x)[:, None, None] * np.ones((1, ny, nz))  # beyond the coarse Nyquist (4)
    u = (low + high)[None, None, ..., None]
    from surrogate.datasets.channel import ChannelData

    fine = ChannelData(np.concatenate([u, u, u, u], -1), x, y, z, ("u", "v", "w", "p"), 0.1)
    y_c = chebyshev_y(5)
    spectral = filter_to_les(fine, 8, 4, y_c, "spectral")
    xc = np.arange(8) / 8 * 2 * np.pi
    expected = np.cos(2 * xc)[:, None, None] * y_c[None, :, None] * np.ones(4)
    np.testing.assert_allclose(spectral.fields[0, 0, ..., 0], expected, atol=1e-5)  # the high mode is gone exactly
    box = filter_to_les(fine, 8, 4, y_c, "box")
    # A box filter over 2 cells averages cos(k x) into cos(k dx / 2) cos(k (x + dx / 2)).
    dx, xm = 2 * np.pi / 16, xc + np.pi / 16
    expected_box = (np.cos(dx) * np.cos(2 * xm))[:, None, None] * y_c[None, :, None] + (np.cos(3 * dx) * np.cos(6 * xm))[:, None, None]
    np.testing.assert_allclose(box.fields[0, 0, ..., 3], expected_box * np.ones(4), atol=1e-5)


def test_bad_channel_inputs_are_refused(tmp_path):
    factformer_array(tmp_path, (2, 3, 8, 9, 4, 3))
    with pytest.raises(InputError, match=r"channel.npy: shape \(2, 3, 8, 9, 4, 3\); the IFactFormer-m layout is"):
        read_factformer_npy(tmp_path / "channel.npy", dt=0.1)
    factformer_array(tmp_path)
    y = chebyshev_y(9)
    y[4], y[5] = y[5], y[4]
    with pytest.raises(InputError, match=r"y grid is not monotone increasing: y\[4\]"):
        read_factformer_npy(tmp_path / "channel.npy", y=y, dt=0.1)
    with pytest.raises(InputError, match=r"the y grid \(given\) has 5 points, the array Ny = 9"):
        read_factformer_npy(tmp_path / "channel.npy", y=chebyshev_y(5), dt=0.1)
    with pytest.raises(InputError, match="dt = -1.0; expected a positive"):
        read_factformer_npy(tmp_path / "channel.npy", dt=-1.0)
    data = read_factformer_npy(tmp_path / "channel.npy", dt=0.1)
    with pytest.raises(InputError, match="do not coarsen to 3"):
        filter_to_les(data, 3, 4, chebyshev_y(5))
    with pytest.raises(InputError, match="LES filter 'gauss'"):
        filter_to_les(data, 4, 4, chebyshev_y(5), "gauss")
    with h5py.File(tmp_path / "dns.h5", "w") as h:
        h["u"] = np.zeros((2, 3, 3, 3))
    with pytest.raises(InputError, match=r"no dataset\(s\) \['v', 'w', 'p', 'x', 'y', 'z'\]"):
        read_dns_h5(tmp_path / "dns.h5")


def test_convert_channel_cli(tmp_path):
    from tests.test_cli import cli

    factformer_array(tmp_path, (1, 2, 8, 9, 4, 4))
    res = cli("convert", "channel", tmp_path / "channel.npy", tmp_path / "les.h5", "--les", "4,5,2", "--re-tau", "180")
    assert res.returncode == 2 and "give it (--dt)" in res.stdout and not (tmp_path / "les.h5").exists()
    res = cli("convert", "channel", tmp_path / "channel.npy", tmp_path / "les.h5", "--les", "4,5,2", "--re-tau", "180", "--dt", "0.2")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "y: the authors' equispaced coordinates" in res.stdout
    store = GridStore(tmp_path / "les.h5")
    assert store.schema.space_shape == (4, 5, 2) and store.schema.coords["y"][[0, -1]].tolist() == pytest.approx([0.0, 2.0])
    res = cli("convert", "channel", tmp_path / "channel.npy", tmp_path / "bad.h5", "--les", "3,5,2", "--dt", "0.2")
    assert res.returncode == 2 and "do not coarsen to 3" in res.stdout and not (tmp_path / "bad.h5").exists()
