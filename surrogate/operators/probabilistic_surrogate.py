"""A probabilistic grid surrogate: a Gaussian next state, conditioned by ProbConserv on the
conservation law of its `conserve` channels (Hansen et al. 2023).

The operator (`GaussianFNO`, `DeepEnsemble`: means then log variances) predicts the
normalized increment's mean and the variance of the next state. For each conserved channel
the Gaussian is then conditioned on

    sum_i w_i u_i(t_k+1) = b,   b = sum_i w_i u_i(t_k) + inflow(t_k -> t_k+1),

w the cell volumes (masked), inflow what entered through the boundaries during the step (the
store's `<field>_boundary_inflow`, zero for a closed domain). In a rollout every step holds
its law exactly, so b equals the initial integral plus the cumulative inflow, the physical
right-hand side; no target enters it. The update runs in float64; the mean of the
posterior is the prediction the rollout machinery sees (`forward`).

Shapes: as `Surrogate`; inflow (B, C) per step (zero for channels not conserved);
`gaussian` returns mean and var (B, C, *space) in physical units.
"""

from __future__ import annotations

from torch import Tensor

from surrogate.operators.constraints.probconserv import ConstrainedGaussian, probconserv_update
from surrogate.operators.gaussian_fno import split_gaussian
from surrogate.operators.surrogate import Surrogate


class ProbabilisticSurrogate(Surrogate):
    """`Surrogate` with a Gaussian operator; `conserve` channels go through ProbConserv's update."""

    probabilistic = True
    sigma_g = 0.0  # the constraint holds exactly (Hansen et al.'s sigma_G = 0)

    def gaussian_normalized(self, xn: Tensor, pn: Tensor, mask: Tensor | None, sn: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Unconstrained mean and variance (B, C, *space) of the normalized next state."""
        delta, var = split_gaussian(self.operator(self.inputs(xn, sn), pn, mask))
        return xn[:, -1] + delta, var

    def member_gaussians_normalized(
        self, xn: Tensor, pn: Tensor, mask: Tensor | None, sn: Tensor | None = None
    ) -> list[tuple[Tensor, Tensor]]:
        """Each ensemble member's (mean, variance) of the normalized next state; one pair for a
        single Gaussian operator (what training fits, member by member)."""
        inputs = self.inputs(xn, sn)
        members = getattr(self.operator, "member_outputs", None)
        outs = members(inputs, pn, mask) if members is not None else [self.operator(inputs, pn, mask)]
        return [(xn[:, -1] + delta, var) for delta, var in map(split_gaussian, outs)]

    def forward_normalized(self, xn: Tensor, pn: Tensor, mask: Tensor | None, sn: Tensor | None = None) -> Tensor:
        return self.gaussian_normalized(xn, pn, mask, sn)[0]

    def gaussian(
        self,
        x: Tensor,
        params: Tensor,
        mask: Tensor | None = None,
        static: Tensor | None = None,
        inflow: Tensor | None = None,
        constrain: bool = True,
    ) -> ConstrainedGaussian:
        """The next state's Gaussian in physical units (float64), conditioned on the conservation
        law of the `conserve` channels unless `constrain` is False."""
        norm = self.normalizer
        mean_n, var_n = self.gaussian_normalized(norm.encode(x), norm.encode_params(params), mask, self.encode_static(static))
        mean = norm.decode(mean_n).double()
        var = norm.decode_variance(var_n.double())
        if not (constrain and self.conserve):
            return ConstrainedGaussian(mean, var)
        w = self.volumes.double().expand(x.shape[0], *self.volumes.shape)  # (B, *space)
        if mask is not None:
            w = w * mask[:, 0].double()
        g = w.flatten(1)[:, None]  # (B, 1, N)
        mean, var = mean.clone(), var.clone()
        for c in self.conserve:
            b = (x[:, -1, c].double() * w).flatten(1).sum(1, keepdim=True)  # (B, 1) the integral at t_k
            if inflow is not None:
                b = b + inflow[:, c : c + 1].double()
            post = probconserv_update(mean[:, c].flatten(1), var[:, c].flatten(1), g, b, self.sigma_g)
            mean[:, c], var[:, c] = post.mean.view_as(mean[:, c]), post.var.view_as(var[:, c])
        return ConstrainedGaussian(mean, var)

    def forward(
        self, x: Tensor, params: Tensor, mask: Tensor | None = None, static: Tensor | None = None, inflow: Tensor | None = None
    ) -> Tensor:
        return self.gaussian(x, params, mask, static, inflow).mean.to(x.dtype)
