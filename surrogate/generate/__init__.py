"""Built-in ensembles: a numerical solver run over sampled parameters, written to a store.

One module per ensemble; each writes through the store writers of `surrogate.datasets`
(atomic: a temporary name renamed when complete) with the seeded split of `splits`.
"""

from surrogate.generate.channel import ChannelGenConfig, generate_channel
from surrogate.generate.gpme import GPMEDataConfig, generate_gpme
from surrogate.generate.ns2d import NS2DDataConfig, generate_ns2d, ns2d_solver_steps
from surrogate.generate.splits import split_indices

__all__ = [
    "ChannelGenConfig",
    "GPMEDataConfig",
    "NS2DDataConfig",
    "generate_channel",
    "generate_gpme",
    "generate_ns2d",
    "ns2d_solver_steps",
    "split_indices",
]
