"""A deep ensemble of operators as one probabilistic operator (Lakshminarayanan et al. 2017)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from surrogate.operators.gaussian_fno import GaussianFNO, split_gaussian


@dataclass
class DeepEnsembleConfig:
    """K independently initialized Gaussian FNOs; the mixture is summarized by its moments."""

    in_channels: int = 1
    out_channels: int = 1
    n_params: int = 0
    n_members: int = 4
    n_modes: tuple[int, ...] = (16,)
    hidden_channels: int = 32
    n_layers: int = 4


class DeepEnsemble(nn.Module):
    """Same convention as `GaussianFNO`: (B, 2 C_out, *space) with the mixture's mean and log variance."""

    probabilistic = True

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        n_params: int = 0,
        n_members: int = 4,
        n_modes: tuple[int, ...] = (16,),
        hidden_channels: int = 32,
        n_layers: int = 4,
    ) -> None:
        super().__init__()
        self.members = nn.ModuleList(
            GaussianFNO(in_channels, out_channels, n_params, n_modes, hidden_channels, n_layers) for _ in range(n_members)
        )

    def member_outputs(self, x: Tensor, params: Tensor, mask: Tensor | None = None) -> list[Tensor]:
        """Each member's own Gaussian output (train each on its own NLL)."""
        return [m(x, params, mask) for m in self.members]

    def forward(self, x: Tensor, params: Tensor, mask: Tensor | None = None) -> Tensor:
        means, variances = zip(*(split_gaussian(o) for o in self.member_outputs(x, params, mask)))
        mu = torch.stack(means).mean(0)
        # Mixture variance: mean aleatoric variance plus the spread of the members' means.
        var = torch.stack(variances).mean(0) + torch.stack(means).var(0, unbiased=False)
        return torch.cat([mu, var.clamp_min(1e-12).log()], dim=1)
