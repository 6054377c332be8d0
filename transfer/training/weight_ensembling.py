"""Weight-space ensembling of the source phase and the target phase (WiSE-FT, Wortsman et al. 2022).

The target phase of `sequential` (8 epochs on 100-200 examples) can overwrite what the source phase
taught. Interpolating the two sets of weights, theta(a) = (1 - a) * theta_source + a * theta_target,
keeps part of it at no training cost; `a` is chosen on target validation data, never by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the model's weights (the model trains on in place)."""
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def interpolate(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor], mix: float) -> dict[str, torch.Tensor]:
    """(1 - mix) * start + mix * end for floating-point tensors; others (position ids) from `end`."""
    return {name: torch.lerp(start[name], tensor, mix) if tensor.is_floating_point() else tensor
            for name, tensor in end.items()}


def select_mix(model: torch.nn.Module, start: dict[str, torch.Tensor], end: dict[str, torch.Tensor],
               mixes: Sequence[float], score: Callable[[torch.nn.Module], float]) -> tuple[float, dict[float, float]]:
    """Load the best interpolation into `model` by `score` (higher is better; ties go to the larger mix,
    the one closer to plain fine-tuning); returns it and every mix's score."""
    scores = {}
    for mix in sorted(mixes):
        model.load_state_dict(interpolate(start, end, mix))
        scores[mix] = float(score(model))
    best = max(sorted(scores, reverse=True), key=scores.__getitem__)
    model.load_state_dict(interpolate(start, end, best))
    return best, scores
