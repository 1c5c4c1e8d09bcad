import pytest

from surrogate.config import load_config
from surrogate.errors import InputError
from surrogate.tasks.grid import GridConfig


def test_yaml_and_overrides_fill_typed_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  path: a.h5\n  n_input: 2\ntrain:\n  lr: 1\nmodel:\n  params: {n_modes: [4, 4]}\n")
    cfg = load_config(GridConfig, path, ["train.epochs=3", "eval.split=valid"])
    assert cfg.data.path == "a.h5" and cfg.data.n_input == 2
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float) and cfg.train.epochs == 3
    assert cfg.eval.split == "valid" and cfg.data.batch_size == 16  # default kept


@pytest.mark.parametrize(
    "text,message",
    [
        ("train:\n  lrr: 0.1\n", "c.yaml: train: unknown key\\(s\\) \\['lrr'\\]"),
        ("train:\n  epochs: many\n", "c.yaml: train.epochs: expected an integer, got 'many'"),
        ("data:\n  fields: u\n", "c.yaml: data.fields: expected a list"),
        ("data:\n  fields: [u, 3]\n", "c.yaml: data.fields\\[1\\]: expected a string, got 3"),
        ("oops: 1\n", "c.yaml: unknown key\\(s\\) \\['oops'\\]"),
        ("train:\n  scheduler: step\n", "train.scheduler 'step'"),
        ("- 1\n", "expected a mapping at the top level"),
    ],
)
def test_bad_keys_are_named(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_config(GridConfig, path)


def test_bad_override(tmp_path):
    with pytest.raises(InputError, match="--set 'train.epochs': expected key.sub=value"):
        load_config(GridConfig, None, ["train.epochs"])


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["train.lrr=0.1"], r"^--set train.lrr=0.1: train: unknown key\(s\) \['lrr'\]"),
        (["train.epochs=many"], r"^--set train.epochs=many: train.epochs: expected an integer, got 'many'"),
        (["train={epochs: x}"], r"^--set train={epochs: x}: train.epochs: expected an integer"),
        (["train.epochs=0"], r"c.yaml with --set train.epochs=0: train: need epochs >= 1"),
        (["train.lr=[1"], r"^--set 'train.lr=\[1': the value is not valid YAML"),
    ],
)
def test_bad_overrides_blame_set_not_the_file(tmp_path, overrides, message):
    """The file is fine; the override is wrong, and the message says so."""
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 0.01\n  epochs: 3\n")
    with pytest.raises(InputError, match=message):
        load_config(GridConfig, path, overrides)
