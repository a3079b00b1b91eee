"""TRIBE v2 brain encoder in plain PyTorch; module names mirror the checkpoint's keys.

Layout (``brain_model_config`` of the release; reference: ``FmriEncoderModel`` in
``tribev2/model.py`` of https://github.com/facebookresearch/tribev2)::

    projectors.{modality}       Linear(L*D, hidden/n_modalities)   [B, T, L*D] -> [B, T, h/3]
    time_pos_embed              [1, max_seq_len, hidden], added after concatenation
    encoder.layers.{2i}         pre-ScaleNorm -> self-attention (rotary) -> scaled residual
    encoder.layers.{2i+1}       pre-ScaleNorm -> GELU feed-forward       -> scaled residual
    encoder.rotary_pos_emb      inv_freq buffer, rotates the first ``rotary_dim`` channels
    encoder.final_norm          ScaleNorm
    low_rank_head               Linear(hidden, rank, bias=False)
    predictor                   average-subject layer: einsum("bct,cd->bdt") + bias
    (pool)                      AdaptiveAvgPool1d(n_output_timesteps) over time

The block layout follows x_transformers 1.27.20 (``layers.{i}.0.0`` pre-norm,
``layers.{i}.1`` branch, ``layers.{i}.2`` residual) so the released state dict
loads strictly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tribe_core.encoder.config import EncoderArchitecture
from tribe_core.errors import TribeInputError


class ScaleNorm(nn.Module):
    """``normalize(x) * sqrt(dim) * g`` with a scalar gain ``g`` (x_transformers)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.g


class Residual(nn.Module):
    """``branch + skip * residual_scale`` (the *skip* path is scaled, as in x_transformers)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.residual_scale = nn.Parameter(torch.ones(dim))

    def forward(self, branch: Tensor, skip: Tensor) -> Tensor:
        return branch + skip * self.residual_scale


class RotaryEmbedding(nn.Module):
    """Rotary frequencies; ``inv_freq`` is a persistent buffer of the checkpoint."""

    inv_freq: Tensor

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq)

    def cos_sin(self, seq_len: int) -> tuple[Tensor, Tensor]:
        """Return ``cos, sin`` of shape ``[seq_len, rotary_dim]`` in float32."""
        t = torch.arange(seq_len, device=self.inv_freq.device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq.float())
        freqs = torch.cat((freqs, freqs), dim=-1)
        return freqs.cos(), freqs.sin()


def _apply_rotary(t: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate the first ``cos.shape[-1]`` channels of ``t`` ``[B, H, N, Dh]`` in float32."""
    rot_dim = cos.shape[-1]
    rot, keep = t[..., :rot_dim].float(), t[..., rot_dim:]
    half = rot_dim // 2
    rotated = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)
    rot = rot * cos + rotated * sin
    return torch.cat((rot.to(t.dtype), keep), dim=-1)


class Attention(nn.Module):
    """Non-causal multi-head self-attention, q/k/v/out without bias."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim // heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        # True: explicit QK^T softmax(float32) V as x_transformers (attn_flash=False);
        # False: fused scaled_dot_product_attention (same maths, faster kernels).
        self.exact_attention = True
        # Optional [3*dim, dim] concatenation of to_q/to_k/to_v (one matmul instead
        # of three; fills the GPU better at small batches). Not in the state dict.
        self.qkv_weight: Tensor | None
        self.register_buffer("qkv_weight", None, persistent=False)

    @torch.no_grad()
    def fuse_qkv(self) -> None:
        """Concatenate the q/k/v weights (call again after changing their dtype)."""
        self.qkv_weight = torch.cat([self.to_q.weight, self.to_k.weight, self.to_v.weight])

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        b, n, _ = x.shape
        x = x.to(self.to_q.weight.dtype)

        def heads(t: Tensor) -> Tensor:
            return t.view(b, n, self.heads, self.dim_head).transpose(1, 2)

        if self.qkv_weight is not None:
            qkv = F.linear(x, self.qkv_weight).view(b, n, 3, self.heads, self.dim_head)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        else:
            q, k, v = heads(self.to_q(x)), heads(self.to_k(x)), heads(self.to_v(x))
        q, k = _apply_rotary(q, cos, sin), _apply_rotary(k, cos, sin)
        if self.exact_attention:
            dots = torch.matmul(q, k.transpose(-1, -2)) * self.dim_head**-0.5
            attn = dots.softmax(dim=-1, dtype=torch.float32).to(dots.dtype)
            out = torch.matmul(attn, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        return self.to_out(out)


class FeedForward(nn.Module):
    """``Linear -> GELU -> Linear`` with bias; keys ``ff.0.0`` and ``ff.2``."""

    def __init__(self, dim: int, mult: int) -> None:
        super().__init__()
        inner = dim * mult
        # Index 1 is x_transformers' (inactive) dropout: kept so keys stay ff.0.0 / ff.2.
        self.ff = nn.Sequential(
            nn.Sequential(nn.Linear(dim, inner), nn.GELU()), nn.Identity(), nn.Linear(inner, dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.ff(x.to(cast(nn.Linear, self.ff[2]).weight.dtype))


class TransformerEncoder(nn.Module):
    """Pre-norm encoder, blocks ``(attention, feed-forward) * depth``, final ScaleNorm."""

    def __init__(self, dim: int, depth: int, heads: int, ff_mult: int, rotary_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(depth):
            for branch in (Attention(dim, heads), FeedForward(dim, ff_mult)):
                # x_transformers norms triple: (pre-branch, post-branch, post-main).
                norms = nn.ModuleList([ScaleNorm(dim), None, None])  # type: ignore[list-item]
                self.layers.append(nn.ModuleList([norms, branch, Residual(dim)]))
        self.rotary_pos_emb = RotaryEmbedding(rotary_dim)
        self.final_norm = ScaleNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[B, T, hidden]`` float32 -> ``[B, T, hidden]`` float32."""
        cos, sin = self.rotary_pos_emb.cos_sin(x.shape[1])
        for norms, branch, residual in cast(Any, self.layers):
            h = norms[0](x)
            out = branch(h, cos, sin) if isinstance(branch, Attention) else branch(h)
            # The residual stream stays float32 whatever the branch compute dtype.
            x = residual(out.float(), x)
        return self.final_norm(x)


class SubjectLayer(nn.Module):
    """Average-subject output layer: ``weights [1, C, V]``, ``bias [1, V]``."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.empty(1, in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(1, out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``[B, C, T]`` -> ``[B, V, T]`` using the single (average) subject row."""
        out = torch.einsum("bct,cd->bdt", x, self.weights[0])
        if self.bias is not None:
            out = out + self.bias[0].view(1, -1, 1)
        return out


class TribeEncoder(nn.Module):
    """TRIBE v2 encoder (average subject): features ``[B, L, D, T]`` -> ``[B, V, T_out]``.

    Attributes
    ----------
    feature_dims
        ``{modality: (n_layers, dim)}`` in modality (concatenation) order.
    n_outputs
        Number of vertices ``V`` (20,484 for fsaverage5).
    n_output_timesteps
        Output TRs per forward (``AdaptiveAvgPool1d`` target).
    config
        Parsed ``config.yaml`` (set by :func:`~tribe_core.encoder.load_encoder`).
    pool_first
        ``False`` (default) pools after the subject layer as the reference.
        ``True`` pools right after the transformer: identical in exact
        arithmetic (both heads are linear, the pool is an average) and halves
        the cost of the output heads; used by the fast precision modes (with
        :meth:`fuse_output_heads`).
    """

    def __init__(self, arch: EncoderArchitecture, config: Mapping[str, Any] | None = None):
        super().__init__()
        self.arch = arch
        self.feature_dims = dict(arch.feature_dims)
        self.n_outputs = arch.n_outputs
        self.n_output_timesteps = arch.n_output_timesteps
        self.config: dict[str, Any] = dict(config or {})
        self.pool_first = False
        self.projectors = nn.ModuleDict(
            {
                name: nn.Linear(n_layers * dim, arch.modality_hidden)
                for name, (n_layers, dim) in arch.feature_dims.items()
            }
        )
        self.time_pos_embed: nn.Parameter | None
        if arch.time_pos_embedding:
            self.time_pos_embed = nn.Parameter(torch.randn(1, arch.max_seq_len, arch.hidden))
        else:
            self.time_pos_embed = None
        self.encoder = TransformerEncoder(
            arch.hidden, arch.depth, arch.heads, arch.ff_mult, arch.rotary_dim
        )
        rank = arch.low_rank_head
        self.low_rank_head = None if rank is None else nn.Linear(arch.hidden, rank, bias=False)
        self.predictor = SubjectLayer(rank or arch.hidden, arch.n_outputs, arch.subject_bias)
        self.pool = nn.AdaptiveAvgPool1d(arch.n_output_timesteps)
        self.fused_head: Tensor | None
        self.register_buffer("fused_head", None, persistent=False)

    @torch.no_grad()
    def fuse_output_heads(self) -> None:
        """Fold ``low_rank_head`` into the subject layer: one ``[V, hidden]`` matmul.

        ``predictor(low_rank_head(h)) = h @ (W_lr^T W_subject) + b`` exactly; the
        product is formed once in float64. It halves the output heads' FLOPs
        (hidden 1152 < rank 2048) and rounds once instead of twice. The folded
        weight is a non-persistent buffer: the state dict keeps the checkpoint's
        keys.
        """
        weights = self.predictor.weights[0].double()  # [C, V]
        if self.low_rank_head is not None:
            weights = self.low_rank_head.weight.double().T @ weights  # [hidden, V]
        self.fused_head = weights.T.contiguous().to(self.predictor.weights.dtype)

    def set_exact_attention(self, exact: bool) -> None:
        """Choose explicit softmax attention (reference) or fused SDPA kernels."""
        for module in self.modules():
            if isinstance(module, Attention):
                module.exact_attention = exact

    def check_features(self, features: Mapping[str, Tensor | None]) -> tuple[int, int]:
        """Validate a batch; return ``(batch, n_steps)``.

        Raises
        ------
        TribeInputError
            Unknown modality, wrong rank, wrong ``(L, D)`` for this checkpoint,
            inconsistent batch/time sizes, or more steps than ``max_seq_len``.
        """
        sizes: set[tuple[int, int]] = set()
        for name, x in features.items():
            if name not in self.feature_dims:
                raise TribeInputError(
                    f"unknown modality {name!r}; this checkpoint expects {list(self.feature_dims)}"
                )
            if x is None:
                continue  # absent modality, zero-filled in forward
            want = self.feature_dims[name]
            if x.ndim != 4 or tuple(x.shape[1:3]) != want:
                raise TribeInputError(
                    f"modality {name!r}: features must be [B, L, D, T] with (L, D) = {want}, "
                    f"got shape {tuple(x.shape)}"
                )
            sizes.add((int(x.shape[0]), int(x.shape[3])))
        if not sizes:
            raise TribeInputError(
                f"no modality given; expected at least one of {list(self.feature_dims)}"
            )
        if len(sizes) > 1:
            raise TribeInputError(f"modalities disagree on (batch, time): {sorted(sizes)}")
        batch, n_steps = sizes.pop()
        if self.time_pos_embed is not None and n_steps > self.time_pos_embed.shape[1]:
            raise TribeInputError(
                f"{n_steps} time steps exceed max_seq_len={self.time_pos_embed.shape[1]}"
            )
        return batch, n_steps

    def forward(self, features: Mapping[str, Tensor | None]) -> Tensor:
        """Predict responses.

        Parameters
        ----------
        features
            ``{modality: [B, L, D, T]}`` float32; a modality absent from the dict
            (or ``None``) is zero-filled after projection (the reference's behaviour).

        Returns
        -------
        Tensor
            ``[B, n_outputs, n_output_timesteps]`` float32.
        """
        batch, n_steps = self.check_features(features)
        parts = []
        projectors = cast(Mapping[str, nn.Linear], self.projectors)
        for name, proj in projectors.items():
            x = features.get(name)
            if x is None:
                parts.append(proj.bias.new_zeros(batch, n_steps, proj.out_features))
                continue
            # [B, L, D, T] -> [B, L*D, T] (layer-major) -> [B, T, L*D]
            x = x.reshape(batch, -1, n_steps).transpose(1, 2).to(proj.weight.dtype)
            parts.append(proj(x))
        h = torch.cat(parts, dim=-1).float()
        if self.time_pos_embed is not None:
            h = h + self.time_pos_embed[:, :n_steps]
        h = self.encoder(h)
        if self.pool_first:
            h = self.pool(h.transpose(1, 2)).transpose(1, 2)
        if self.fused_head is not None:
            # [B, T, hidden] @ [hidden, V] + bias -> [B, T, V], returned as a [B, V, T] view.
            out = F.linear(
                h,
                self.fused_head,
                self.predictor.bias[0] if self.predictor.bias is not None else None,
            )
            return out.transpose(1, 2) if self.pool_first else self.pool(out.transpose(1, 2))
        if self.low_rank_head is not None:
            h = self.low_rank_head(h.to(self.low_rank_head.weight.dtype))
        out = self.predictor(h.transpose(1, 2).to(self.predictor.weights.dtype)).float()
        return out if self.pool_first else self.pool(out)
