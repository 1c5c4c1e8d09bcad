"""The one name -> (config, class) table, used by the CLI and by checkpoints."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from torch import nn

from surrogate.config import from_dict
from surrogate.errors import InputError
from surrogate.operators.enf2enf import Enf2Enf, Enf2EnfConfig
from surrogate.operators.ensemble import DeepEnsemble, DeepEnsembleConfig
from surrogate.operators.factformer import FactFormer, FactFormerConfig
from surrogate.operators.fno import FNO, FNOConfig
from surrogate.operators.gaussian_fno import GaussianFNO, GaussianFNOConfig
from surrogate.operators.gino import GINO, GINOConfig
from surrogate.operators.graph_transformer import GraphTransformer, GraphTransformerConfig
from surrogate.operators.meshgraphnet import MeshGraphNet, MeshGraphNetConfig
from surrogate.operators.persistence import Persistence, PersistenceConfig
from surrogate.operators.steady_graph import SteadyGraph, SteadyGraphConfig

OPERATORS: dict[str, tuple[type, type[nn.Module]]] = {
    "fno": (FNOConfig, FNO),
    "persistence": (PersistenceConfig, Persistence),
    "gaussian_fno": (GaussianFNOConfig, GaussianFNO),
    "deep_ensemble": (DeepEnsembleConfig, DeepEnsemble),
    "graph_transformer": (GraphTransformerConfig, GraphTransformer),
    "meshgraphnet": (MeshGraphNetConfig, MeshGraphNet),
    "factformer": (FactFormerConfig, FactFormer),
    "enf2enf": (Enf2EnfConfig, Enf2Enf),
    "steady_graph": (SteadyGraphConfig, SteadyGraph),
    "gino": (GINOConfig, GINO),
}
GRID_OPERATORS = ("fno", "factformer", "persistence")
PROBABILISTIC_OPERATORS = ("gaussian_fno", "deep_ensemble")  # mean and variance heads: grid models under ProbConserv
MESH_OPERATORS = ("graph_transformer", "meshgraphnet")
STEADY_OPERATORS = ("enf2enf", "steady_graph", "gino")


def build_operator(name: str, config: Any) -> nn.Module:
    """The operator `name` built from its config dataclass (or a dict of its fields)."""
    if name not in OPERATORS:
        raise InputError(f"model name {name!r}: expected one of {sorted(OPERATORS)}")
    cfg_cls, cls = OPERATORS[name]
    if isinstance(config, dict):
        config = from_dict(cfg_cls, config, f"model {name!r}")
    if not isinstance(config, cfg_cls):
        raise InputError(f"model {name!r}: expected a {cfg_cls.__name__}, got {type(config).__name__}")
    kwargs = asdict(config)
    for k, v in kwargs.items():
        if isinstance(v, list):
            kwargs[k] = tuple(v)
    return cls(**kwargs)
