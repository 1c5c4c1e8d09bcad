"""FNO with a variance head: a probabilistic operator for ProbConserv.

It returns a Gaussian per output value, as 2 * C_out channels: the means, then the log
variances. Trained with `gaussian_nll_loss`; `split_gaussian` unpacks the output.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from surrogate.operators.fno import FNO


@dataclass
class GaussianFNOConfig:
    """FNO hyper-parameters; the operator has twice `out_channels` outputs."""

    in_channels: int = 1
    out_channels: int = 1
    n_params: int = 0
    n_modes: tuple[int, ...] = (16,)
    hidden_channels: int = 32
    n_layers: int = 4
    use_mask: bool = False


class GaussianFNO(nn.Module):
    """(B, C_in, *space) + params (B, P) -> (B, 2 C_out, *space): mean, then log variance."""

    probabilistic = True

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        n_params: int = 0,
        n_modes: tuple[int, ...] = (16,),
        hidden_channels: int = 32,
        n_layers: int = 4,
        use_mask: bool = False,
    ) -> None:
        super().__init__()
        self.fno = FNO(in_channels, 2 * out_channels, n_params, n_modes, hidden_channels, n_layers, use_mask=use_mask)

    def forward(self, x: Tensor, params: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.fno(x, params, mask)


def split_gaussian(out: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and variance from a (B, 2 C, *space) Gaussian output (log variance clamped)."""
    c = out.shape[1] // 2
    return out[:, :c], out[:, c:].clamp(-20, 10).exp()


def gaussian_nll_loss(out: Tensor, target: Tensor) -> Tensor:
    """Mean Gaussian negative log-likelihood of `target` (B, C, *space), constant dropped."""
    mean, var = split_gaussian(out)
    return 0.5 * ((target - mean).square() / var + var.log()).mean()
