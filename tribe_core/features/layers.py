"""Layer selection and aggregation of a model's hidden states (neuralset 0.0.2 semantics).

A model gives ``N`` hidden states (embedding output + one per block). The
checkpoint's config names relative depths ``layers`` (fractions in ``[0, 1]``)
and a ``layer_aggregation``:

- relative depth ``f`` maps to index ``int(f * (N - 1))``; duplicate indices
  are dropped (sorted, unique);
- ``"group_mean"``: with indices ``[i0, i1, ..., ik]`` the groups are
  ``mean(hs[i0:i1]), ..., mean(hs[i(k-1):ik + 1])`` -> ``k`` groups;
- ``"mean"`` / ``"sum"``: one group (mean / sum of the selected states);
- ``None``: the selected states themselves;
- a single selected index always gives one group, that state.

``cache_n_layers`` (text and video in the reference) first keeps ``n``
equidistant hidden states, ``round(linspace(0, N - 1, n))``, and the indices
above are computed on that subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

Layers = float | Sequence[float] | str
ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor")

AGGREGATIONS = ("group_mean", "mean", "sum", None)


def _layer_list(layers: Layers) -> list[float] | None:
    if isinstance(layers, str):
        if layers != "all":
            raise ValueError(
                f"layers must be a fraction, a list of fractions or 'all', got {layers!r}"
            )
        return None
    values = [float(layers)] if isinstance(layers, int | float) else [float(x) for x in layers]
    if not values or not all(0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"layers must be fractions between 0 and 1, got {layers!r}")
    return values


def subselected_indices(n_hidden_states: int, cache_n_layers: int | None) -> list[int]:
    """Indices kept by ``cache_n_layers`` (all of them when ``None`` or large enough)."""
    if cache_n_layers is None or cache_n_layers >= n_hidden_states:
        return list(range(n_hidden_states))
    return [int(round(x)) for x in np.linspace(0, n_hidden_states - 1, cache_n_layers)]


def layer_indices(n_hidden_states: int, layers: Layers) -> list[int]:
    """Sorted unique hidden-state indices selected by ``layers`` among ``n_hidden_states``."""
    values = _layer_list(layers)
    if values is None:
        return list(range(n_hidden_states))
    return sorted({int(v * (n_hidden_states - 1)) for v in values})


def n_layer_groups(
    n_hidden_states: int,
    layers: Layers,
    aggregation: str | None,
    cache_n_layers: int | None = None,
) -> int:
    """Number of layer groups ``L`` that :func:`aggregate_layers` produces.

    Parameters
    ----------
    n_hidden_states
        Hidden states the model returns (``num_hidden_layers + 1`` for HF models).
    layers, aggregation, cache_n_layers
        As in the checkpoint config (see module docstring).
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"unknown layer_aggregation {aggregation!r}; expected one of {AGGREGATIONS}"
        )
    n = len(subselected_indices(n_hidden_states, cache_n_layers))
    indices = layer_indices(n, layers)
    if len(indices) == 1 or aggregation in ("mean", "sum"):
        return 1
    if aggregation == "group_mean":
        return len(indices) - 1
    return len(indices)


def aggregate_layers(
    hidden_states: ArrayT,
    layers: Layers,
    aggregation: str | None,
    cache_n_layers: int | None = None,
) -> ArrayT:
    """Reduce hidden states ``[N, ...]`` to layer groups ``[L, ...]``.

    Works on numpy arrays and torch tensors; the layer axis is always kept
    (``L = 1`` for ``mean``/``sum``/single layer), unlike neuralset which
    drops it in those cases.
    """
    n_total = hidden_states.shape[0]
    keep = subselected_indices(n_total, cache_n_layers)
    if len(keep) != n_total:
        hidden_states = hidden_states[keep]
    n = hidden_states.shape[0]
    indices = layer_indices(n, layers)
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"unknown layer_aggregation {aggregation!r}; expected one of {AGGREGATIONS}"
        )
    if len(indices) == 1:
        return hidden_states[indices[0] : indices[0] + 1]
    if aggregation == "mean":
        return (
            hidden_states[indices].mean(0, keepdims=True)
            if isinstance(hidden_states, np.ndarray)
            else hidden_states[indices].mean(0, keepdim=True)
        )
    if aggregation == "sum":
        return (
            hidden_states[indices].sum(0, keepdims=True)
            if isinstance(hidden_states, np.ndarray)
            else hidden_states[indices].sum(0, keepdim=True)
        )
    if aggregation is None:
        return hidden_states[indices]
    bounds = list(indices)
    bounds[-1] += 1
    groups = [hidden_states[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if isinstance(hidden_states, np.ndarray):
        return np.stack(groups)
    import torch  # a tensor came in, so torch is loaded; the module itself stays light

    return torch.stack(groups)
