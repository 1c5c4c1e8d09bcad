"""Time per training step: our FNO against neuraloperator's FNO, same sizes and data, one run.

Both see the same information: our FNO takes the field, the parameter and the mask as
separate inputs; neuraloperator's FNO gets them concatenated as channels. Each step is
forward, MSE loss, backward and an AdamW update. Target: ours / neuraloperator <= 1.05.
"""

from __future__ import annotations

import argparse

import torch
from neuralop.models import FNO as NeuralopFNO
from rich.console import Console
from rich.table import Table

from benchmarks.common import median, time_interleaved, write_result
from surrogate.operators.fno import FNO


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--modes", type=int, default=16)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    n, b = args.resolution, args.batch
    x = torch.randn(b, 1, n, n, device=device)
    p = torch.randn(b, 1, device=device)
    mask = torch.ones(b, 1, n, n, device=device)
    y = torch.randn(b, 1, n, n, device=device)
    modes = (args.modes, args.modes)
    ours = FNO(1, 1, 1, n_modes=modes, hidden_channels=args.width, n_layers=args.layers).to(device)
    ref = NeuralopFNO(n_modes=modes, in_channels=3, out_channels=1, hidden_channels=args.width, n_layers=args.layers).to(device)
    stacked = torch.cat([x, p[:, :, None, None].expand(b, 1, n, n), mask], dim=1)
    opt_ours = torch.optim.AdamW(ours.parameters())
    opt_ref = torch.optim.AdamW(ref.parameters())

    def step(model, opt, call):
        def run() -> None:
            loss = (call() - y).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()

        return run

    times = time_interleaved(
        {
            "surrogate FNO": step(ours, opt_ours, lambda: ours(x, p, mask)),
            "neuraloperator FNO": step(ref, opt_ref, lambda: ref(stacked)),
        },
        args.repeats,
    )
    t_ours, t_ref = median(times["surrogate FNO"]), median(times["neuraloperator FNO"])
    table = Table(title=f"FNO training step, B={b}, {n}^2, modes {args.modes}, width {args.width}, {device}")
    for col in ("model", "median s/step", "params"):
        table.add_column(col, justify="right")
    table.add_row("surrogate FNO", f"{t_ours:.4f}", str(sum(q.numel() for q in ours.parameters())))
    table.add_row("neuraloperator FNO", f"{t_ref:.4f}", str(sum(q.numel() for q in ref.parameters())))
    ratio = t_ours / t_ref
    table.caption = f"ratio ours / neuraloperator = {ratio:.3f} (target <= 1.05)"
    Console().print(table)
    path = write_result(
        "train_step",
        {
            "sizes": vars(args),
            "seconds_per_step": {"surrogate": t_ours, "neuraloperator": t_ref},
            "all_times": times,
            "ratio_ours_over_neuraloperator": ratio,
            "target": "<= 1.05",
            "met": ratio <= 1.05,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
