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
        ("train:\n  lrr: 0.1\n", "c.yaml.train: unknown key\\(s\\) \\['lrr'\\]"),
        ("train:\n  epochs: many\n", "c.yaml.train.epochs: expected an integer, got 'many'"),
        ("data:\n  fields: u\n", "c.yaml.data.fields: expected a list"),
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
    with pytest.raises(InputError, match="key.sub=value"):
        load_config(GridConfig, None, ["train.epochs"])
