"""V-JEPA2 video encoder with fused kernels: the same maths as ``transformers``' ``VJEPA2Model``.

The encoder part the video extractor uses (``skip_predictor=True``: patch
embedding, ``num_hidden_layers`` pre-norm blocks with 3D rotary attention, the
final layer norm), run on the loaded model's own weights:

- the 3D rotary embedding's cos/sin tables are built once per token count
  (the same operations, dtype and device as ``transformers``, so the tables
  are bit for bit its own) and applied to q and k together in one
  element-wise pass: ``x * cos + swap_pairs(x) * sin_signed``, with the
  pairs' sign folded into the sin table, so no ``cat``/``neg``/``stack``
  copies;
- q, k and v come from one matrix product: the three weights are put side
  by side once and the model's ``query``/``key``/``value`` parameters are
  re-pointed at views of that storage (no second copy of any weight; the
  ``transformers`` module keeps working on the same tensors);
- attention reads q, k, v as strided views of the projection's output and
  its output goes to the next projection without a layout copy;
- on CUDA each block is one ``torch.compile`` graph (no graph break; the
  same graph serves every layer, whose weights are its inputs), which fuses
  layer norms, GELU, residual adds, the rotary pass and the hidden states'
  token means; the extractor compiles only for videos of at least
  :data:`COMPILE_MIN_CLIPS` clips (:meth:`FusedVJEPA2Encoder.plan`) and runs
  the same blocks eagerly otherwise.

:meth:`FusedVJEPA2Encoder.state_means` gives the token mean of every hidden
state (what the extractor keeps), without holding the states themselves.
Which states ``transformers`` returns depends on its version: up to 4.x the
last one is the final layer norm's output, from 5.0 the last block's raw
output (:func:`last_state_is_normed` finds out from the installed version's
behaviour); this module returns the same ones.

:func:`fused_encoder` decides (``features.fused``: ``auto``, ``on``,
``off``) and falls back to the ``transformers`` module (``None``) when the
model is not a ``VJEPA2Model`` this path reproduces or, with ``auto``, when
it is not on a CUDA device.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from tribe_core.batching import is_out_of_memory
from tribe_core.features.fused_choice import FusedChooser

log = logging.getLogger(__name__)

_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# Inductor options of the compiled blocks. On an H200 (benchmarks/video_fused.py,
# docs/benchmarks.md) multi-kernel reductions make the width-1408 layer norms
# persistent (one read of each row) and coordinate-descent tuning tunes the
# element-wise kernels: ViT-G 65.7 -> 64.1 ms per clip, for ~10 s more compile.
COMPILE_OPTIONS: dict[str, Any] = {"coordinate_descent_tuning": True, "triton.multi_kernel": 1}
# Fewer clips than this run the fused blocks eagerly when compiling is left to
# FusedVJEPA2Encoder.plan (ViT-G on an H200: compiling took ~20 s from scratch and
# saves ~10.6 ms a clip, so ~1,900 clips to break even; Inductor's disk cache
# shortens later compiles in other processes on the same machine).
COMPILE_MIN_CLIPS = 1000
# Inductor options for a product done by a Triton GEMM template (autotuned among
# Triton configurations only), so that its element-wise epilogue (fc1's GELU, fc2's
# residual add) runs inside it instead of as a separate pass over the activations.
TRITON_GEMM_OPTIONS: dict[str, Any] = {
    "max_autotune_gemm": True,
    "max_autotune_gemm_backends": "TRITON",
    "epilogue_fusion": True,
    "coordinate_descent_tuning": True,
}


@dataclass
class _Block:
    """One encoder layer's tensors (the model's own parameters, or views of them)."""

    norm1_w: torch.Tensor
    norm1_b: torch.Tensor
    qkv_w: torch.Tensor
    qkv_b: torch.Tensor | None
    proj_w: torch.Tensor
    proj_b: torch.Tensor
    norm2_w: torch.Tensor
    norm2_b: torch.Tensor
    fc1_w: torch.Tensor
    fc1_b: torch.Tensor
    fc2_w: torch.Tensor
    fc2_b: torch.Tensor

    def args(self) -> tuple[torch.Tensor | None, ...]:
        return (
            self.norm1_w, self.norm1_b, self.qkv_w, self.qkv_b, self.proj_w, self.proj_b,
            self.norm2_w, self.norm2_b, self.fc1_w, self.fc1_b, self.fc2_w, self.fc2_b,
        )  # fmt: skip


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x * cos + swap_pairs(x) * sin`` (``sin`` carries the pairs' signs)."""
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    return x * cos + swapped * sin


def _attention_half(
    h: torch.Tensor,
    norm1_w: torch.Tensor,
    norm1_b: torch.Tensor,
    qkv_w: torch.Tensor,
    qkv_b: torch.Tensor | None,
    proj_w: torch.Tensor,
    proj_b: torch.Tensor,
    norm2_w: torch.Tensor,
    norm2_b: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    heads: int,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's attention and residual: ``(h [B, N, D], layer norm 2 of h)``."""
    batch, tokens, width = h.shape
    x = F.layer_norm(h, (width,), norm1_w, norm1_b, eps)
    qkv = F.linear(x, qkv_w, qkv_b).view(batch, tokens, 3, heads, width // heads)
    qk = _rope(qkv[:, :, :2], cos, sin)  # [B, N, 2, H, d]: q and k in one pass
    attn = F.scaled_dot_product_attention(
        qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
    )  # [B, H, N, d]; the default scale is transformers' head_dim ** -0.5
    h = F.linear(attn.transpose(1, 2).reshape(batch, tokens, width), proj_w, proj_b) + h
    return h, F.layer_norm(h, (width,), norm2_w, norm2_b, eps)


def _fc1_gelu(x: torch.Tensor, fc1_w: torch.Tensor, fc1_b: torch.Tensor) -> torch.Tensor:
    """The MLP's first product and its (exact, erf) GELU."""
    return F.gelu(F.linear(x, fc1_w, fc1_b))


def _fc2_residual(
    x: torch.Tensor, fc2_w: torch.Tensor, fc2_b: torch.Tensor, h: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The MLP's second product and the residual: ``(output, its token mean float32)``."""
    h = F.linear(x, fc2_w, fc2_b) + h
    return h, h.float().mean(dim=1)


def _split_block(
    attention_half: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    fc1_gelu: Callable[..., torch.Tensor],
    fc2_residual: Callable[..., tuple[torch.Tensor, torch.Tensor]],
) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """A layer's function from its three parts (plain or each compiled on its own)."""

    def block(
        h: torch.Tensor, norm1_w: torch.Tensor, norm1_b: torch.Tensor, qkv_w: torch.Tensor,
        qkv_b: torch.Tensor | None, proj_w: torch.Tensor, proj_b: torch.Tensor,
        norm2_w: torch.Tensor, norm2_b: torch.Tensor, fc1_w: torch.Tensor, fc1_b: torch.Tensor,
        fc2_w: torch.Tensor, fc2_b: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
        heads: int, eps: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """One ``VJEPA2Layer`` (eval): ``(output [B, N, D], its token mean [B, D] float32)``."""
        h, x = attention_half(
            h, norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b, norm2_w, norm2_b, cos, sin,
            heads, eps,
        )  # fmt: skip
        return fc2_residual(fc1_gelu(x, fc1_w, fc1_b), fc2_w, fc2_b, h)

    return block


#: One ``VJEPA2Layer`` (eval); compiled whole, it is one graph per block.
_block = _split_block(_attention_half, _fc1_gelu, _fc2_residual)


def _embed(
    pixels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tubelet patch embedding (``Conv3d`` with stride = kernel) as one matrix product.

    ``pixels`` ``[B, F, C, H, W]`` (frames first, as the processor gives them),
    already cut to whole tubelets and patches; returns ``[B, N, D]`` in
    (time, row, column) token order, as ``Conv3d(...).flatten(2).transpose(1, 2)``,
    and its token mean ``[B, D]`` float32.
    """
    out, chans, kt, kh, kw = weight.shape
    batch, frames, _, height, width = pixels.shape
    t, gh, gw = frames // kt, height // kh, width // kw
    patches = pixels.view(batch, t, kt, chans, gh, kh, gw, kw).permute(0, 1, 4, 6, 3, 2, 5, 7)
    patches = patches.reshape(batch, t * gh * gw, chans * kt * kh * kw).to(weight.dtype)
    h = F.linear(patches, weight.view(out, -1), bias)
    return h, h.float().mean(dim=1)


def _final(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    y = F.layer_norm(h, (h.shape[-1],), weight, bias, eps)
    return y, y.float().mean(dim=1)


@functools.cache
def last_state_is_normed() -> bool:
    """Whether the installed ``transformers``' last V-JEPA2 hidden state is the final norm's output.

    True up to transformers 4.x; from 5.0 ``hidden_states`` ends with the last
    block's raw output. Read from behaviour (a 1-layer model of width 8), not
    from a version number.
    """
    from transformers import VJEPA2Config, VJEPA2Model

    config = VJEPA2Config(
        patch_size=4, crop_size=4, frames_per_clip=2, tubelet_size=2, hidden_size=8,
        num_attention_heads=1, num_hidden_layers=1, mlp_ratio=1.0, pred_hidden_size=8,
        pred_num_attention_heads=1, pred_num_hidden_layers=1,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = VJEPA2Model(config).eval()
        with torch.no_grad():
            model.encoder.layernorm.weight.fill_(3.0)  # the norm must change the state
            out = model(
                pixel_values_videos=torch.randn(1, 2, 3, 4, 4),
                output_hidden_states=True,
                skip_predictor=True,
            )
    return bool(torch.equal(out.hidden_states[-1], out.last_hidden_state))


def unsupported_reason(model: torch.nn.Module) -> str | None:
    """Why ``model`` cannot take the fused path (``None``: it can)."""
    if type(model).__name__ != "VJEPA2Model" or not hasattr(model, "encoder"):
        return f"{type(model).__name__} is not a transformers VJEPA2Model"
    config: Any = model.config
    encoder: Any = model.encoder
    if model.training:
        return "the model is in training mode"
    if getattr(config, "hidden_act", None) != "gelu":
        return f"hidden_act {getattr(config, 'hidden_act', None)!r} is not 'gelu'"
    layers = list(getattr(encoder, "layer", []))
    if not layers or len(layers) != config.num_hidden_layers:
        return "the encoder's layers do not match num_hidden_layers"
    params = list(model.parameters())
    devices = {p.device for p in params}
    dtypes = {p.dtype for p in encoder.parameters()}
    if len(devices) != 1 or len(dtypes) != 1 or next(iter(dtypes)) not in _DTYPES:
        return f"parameters on {devices} in {dtypes} (one device and one float dtype needed)"
    expected = {"norm1", "attention", "norm2", "mlp", "drop_path"}
    for layer in layers:
        attn: Any = getattr(layer, "attention", None)
        children = set(dict(layer.named_children()))
        if type(layer).__name__ != "VJEPA2Layer" or not expected <= children:
            return f"unexpected encoder layer {type(layer).__name__}"
        if type(attn).__name__ != "VJEPA2RopeAttention":
            return f"unexpected attention {type(attn).__name__}"
        head = attn.attention_head_size
        if head % 2 or attn.d_dim % 2 or attn.d_dim * 3 > head:
            return f"head size {head} / rotary section {attn.d_dim} not supported"
        if (attn.query.bias is None) != (attn.key.bias is None) or (attn.key.bias is None) != (
            attn.value.bias is None
        ):
            return "q/k/v biases only partly present"
        mlp = layer.mlp
        if not isinstance(getattr(mlp, "fc1", None), torch.nn.Linear) or not isinstance(
            getattr(mlp, "fc2", None), torch.nn.Linear
        ):
            return "unexpected MLP"
    conv = encoder.embeddings.patch_embeddings.proj
    if not isinstance(conv, torch.nn.Conv3d) or tuple(conv.stride) != tuple(conv.kernel_size):
        return "patch embedding is not a Conv3d with stride = kernel"
    if conv.padding not in ((0, 0, 0), "valid") or conv.bias is None or conv.groups != 1:
        return "patch embedding has padding, groups or no bias"
    return None


class FusedVJEPA2Encoder:
    """The encoder of a loaded ``transformers`` ``VJEPA2Model``, with fused kernels.

    Parameters
    ----------
    model
        A ``VJEPA2Model`` in eval mode (see :func:`unsupported_reason`); its
        parameters are referenced, not copied (q/k/v are re-pointed at views
        of one concatenated weight).
    compile
        ``torch.compile`` the blocks (default: on CUDA devices, see :meth:`plan`).
    compile_options
        Inductor options for ``torch.compile`` (default: :data:`COMPILE_OPTIONS`).
    cuda_graph
        Replay :meth:`state_means` as one CUDA graph per input shape. Off by
        default: at 8 clips a batch the GPU is never idle between kernels, so
        a graph gained nothing measurable on an H200 (docs/benchmarks.md).
    mlp_options
        Compile each block as three graphs instead of one: the attention half
        (``compile_options``), fc1 + GELU (``mlp_options["fc1"]``) and
        fc2 + residual (``mlp_options["fc2"]``), a missing key meaning
        ``compile_options``. Lets the MLP products take other Inductor options
        (Triton GEMM templates carrying GELU or the residual add in their
        epilogue, :data:`TRITON_GEMM_OPTIONS`). ``None`` (default): one graph.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        compile: bool | None = None,
        compile_options: dict[str, Any] | None = None,
        cuda_graph: bool | None = None,
        mlp_options: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the fused V-JEPA2 path does not support this model: {reason}")
        self.model = model
        config: Any = model.config
        self.config = config
        self.device = next(model.parameters()).device
        self.compile = self.device.type == "cuda" if compile is None else compile
        self.heads = int(config.num_attention_heads)
        self.eps = float(config.layer_norm_eps)
        self.normed_last = last_state_is_normed()
        self._tables: dict[tuple[int, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}
        self._batch = 0  # compiled batch size: smaller batches are padded up to it
        self.cuda_graph = bool(cuda_graph) and self.compile and self.device.type == "cuda"
        self._graphs: dict[tuple[Any, ...], tuple[Any, torch.Tensor, torch.Tensor]] = {}
        self._compile_auto = compile is None
        self._options = dict(COMPILE_OPTIONS if compile_options is None else compile_options)
        self._mlp_options = mlp_options
        self._compiled: tuple[Callable[..., tuple[torch.Tensor, torch.Tensor]], ...] | None = None
        self._bind()

    def plan(self, n_clips: int) -> None:
        """Whether to compile, from the number of clips about to be encoded.

        Only when ``compile`` was left to the default on a CUDA device:
        compiling costs ~20 s once per process (less with Inductor's disk cache)
        and saves ~10 ms a ViT-G clip over the eager fused path, so fewer than
        :data:`COMPILE_MIN_CLIPS` clips run eagerly. Once compiled, it stays so.
        """
        if self._compile_auto and self.device.type == "cuda" and self._compiled is None:
            self.compile = n_clips >= COMPILE_MIN_CLIPS

    def _fns(self) -> tuple[Callable[..., tuple[torch.Tensor, torch.Tensor]], ...]:
        """``(block, embed, final)``: compiled (made on first use) or eager."""
        if not self.compile:
            return (_block, _embed, _final)
        if self._compiled is None:

            def compiled(fn: Callable[..., Any], options: dict[str, Any] | None) -> Any:
                return torch.compile(fn, fullgraph=True, dynamic=False, options=options or None)

            block: Callable[..., tuple[torch.Tensor, torch.Tensor]]
            if self._mlp_options is None:
                block = compiled(_block, self._options)
            else:
                parts = self._mlp_options
                block = _split_block(
                    compiled(_attention_half, self._options),
                    compiled(_fc1_gelu, parts.get("fc1", self._options)),
                    compiled(_fc2_residual, parts.get("fc2", self._options)),
                )
            self._compiled = (
                block,
                compiled(_embed, self._options),
                compiled(_final, self._options),
            )
        return self._compiled

    def _bind(self) -> None:
        """Reference the model's parameters; put q/k/v side by side in one storage."""
        encoder: Any = self.model.encoder
        self.blocks: list[_Block] = []
        for layer in encoder.layer:
            attn = layer.attention
            linears = (attn.query, attn.key, attn.value)
            weights = tuple(lin.weight for lin in linears)
            biases = tuple(lin.bias for lin in linears)
            has_bias = attn.query.bias is not None
            if _consecutive(weights) and (not has_bias or _consecutive(biases)):
                qkv_w, qkv_b = _joined(weights), _joined(biases) if has_bias else None
            else:
                with torch.no_grad():
                    qkv_w = torch.cat(weights)
                    qkv_b = torch.cat(biases) if has_bias else None
                width = weights[0].shape[0]
                for i, lin in enumerate(linears):  # the module now reads the joined storage
                    lin.weight.data = qkv_w[i * width : (i + 1) * width]
                    if qkv_b is not None:
                        lin.bias.data = qkv_b[i * width : (i + 1) * width]
            self.blocks.append(
                _Block(
                    layer.norm1.weight,
                    layer.norm1.bias,
                    qkv_w,
                    qkv_b,
                    attn.proj.weight,
                    attn.proj.bias,
                    layer.norm2.weight,
                    layer.norm2.bias,
                    layer.mlp.fc1.weight,
                    layer.mlp.fc1.bias,
                    layer.mlp.fc2.weight,
                    layer.mlp.fc2.bias,
                )  # fmt: skip
            )
        self._bound = self._fingerprint()

    def _fingerprint(self) -> tuple[tuple[int, torch.dtype, torch.device], ...]:
        """Storage pointers of every parameter: they change when the model is moved or cast."""
        return tuple((p.data_ptr(), p.dtype, p.device) for p in self.model.parameters())

    def _tables_for(self, tokens: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, sin)`` ``[N, 1, 1, head]`` for q/k laid out ``[B, N, 2, H, head]``."""
        key = (tokens, dtype)
        if key not in self._tables:
            encoder: Any = self.model.encoder
            attn = encoder.layer[0].attention
            self._tables[key] = rotary_tables(attn, tokens, dtype, self.device)
        return self._tables[key]

    def _check_bound(self) -> None:
        if self._fingerprint() != self._bound:  # moved, cast or reloaded since: bind again
            self._tables.clear()
            self._graphs.clear()
            self.device = next(self.model.parameters()).device
            self._bind()

    def forward(
        self, pixel_values_videos: torch.Tensor, keep_states: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """Token means of every hidden state, and optionally the states.

        Parameters
        ----------
        pixel_values_videos
            Processed clips ``[B, frames, 3, height, width]``.
        keep_states
            Also return the hidden states ``[B, N, D]`` (as ``transformers``'
            ``hidden_states``); otherwise only their means are kept.

        Returns
        -------
        tuple
            ``means [num_hidden_layers + 1, B, D]`` float32, and the states or ``None``.
        """
        self._check_bound()
        pixels = self._cut(pixel_values_videos)
        return self._run(pixels, keep_states)

    def _cut(self, pixels: torch.Tensor) -> torch.Tensor:
        """Clips cut to whole tubelets and patches, as the ``Conv3d`` sees them."""
        encoder: Any = self.model.encoder
        kt, kh, kw = encoder.embeddings.patch_embeddings.proj.weight.shape[2:]
        if pixels.shape[1] < kt:  # as transformers: the clip repeated to one tubelet
            pixels = pixels.repeat(1, kt, 1, 1, 1)
        frames = pixels.shape[1] // kt * kt
        height, width = pixels.shape[3] // kh * kh, pixels.shape[4] // kw * kw
        return pixels[:, :frames, :, :height, :width].contiguous()

    def _run(
        self, pixels: torch.Tensor, keep_states: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        encoder: Any = self.model.encoder
        conv = encoder.embeddings.patch_embeddings.proj
        block, embed, final = self._fns()
        h, mean = embed(pixels, conv.weight, conv.bias)
        cos, sin = self._tables_for(h.shape[1], h.dtype)
        means = [mean]
        states = [h] if keep_states else None
        for i, blk in enumerate(self.blocks):
            h, mean = block(h, *blk.args(), cos, sin, self.heads, self.eps)
            last = i == len(self.blocks) - 1
            if last and self.normed_last:
                norm = encoder.layernorm
                y, mean = final(h, norm.weight, norm.bias, float(norm.eps))
                if states is not None:
                    states.append(y)
            elif states is not None:
                states.append(h)
            means.append(mean)
        return torch.stack(means), states

    def _replay(self, pixels: torch.Tensor) -> torch.Tensor:
        """``_run(pixels)[0]`` through a CUDA graph captured once per input shape."""
        key = (tuple(pixels.shape), pixels.dtype, pixels.device)
        if key not in self._graphs:
            self._run(pixels)  # compiles (first shape) and warms up outside the capture
            static = pixels.clone()
            side = torch.cuda.Stream(pixels.device)
            side.wait_stream(torch.cuda.current_stream(pixels.device))
            with torch.cuda.stream(side):
                self._run(static)
            torch.cuda.current_stream(pixels.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self._run(static)[0]
            self._graphs[key] = (graph, static, out)
        graph, static, out = self._graphs[key]
        static.copy_(pixels)
        graph.replay()
        return out.clone()

    def state_means(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """Token means ``[num_hidden_layers + 1, B, D]`` (float32) of every hidden state.

        Compiled, a batch smaller than the largest seen is padded up to it (one
        compiled shape, one CUDA graph); out of memory, the next batch sets the
        size anew.
        """
        self._check_bound()
        pixels = self._cut(pixel_values_videos)
        batch = pixels.shape[0]
        if self.compile:
            self._batch = max(self._batch, batch)
            if self._batch > batch:
                pad = pixels[-1:].expand(self._batch - batch, *pixels.shape[1:])
                pixels = torch.cat([pixels, pad])
        try:
            if self.cuda_graph:
                try:
                    return self._replay(pixels)[:, :batch]
                except Exception as exc:
                    if is_out_of_memory(exc):
                        raise
                    log.warning("video: CUDA graph capture failed (%s); running without", exc)
                    self.cuda_graph = False
                    self._graphs.clear()
            return self._run(pixels)[0][:, :batch]
        except Exception as exc:
            if is_out_of_memory(exc):  # the caller retries a smaller batch: compile for that
                self._batch = 0
                self._graphs.clear()
            raise


def _consecutive(parts: tuple[torch.Tensor, ...]) -> bool:
    """Whether ``parts`` are consecutive contiguous views from the start of one storage."""
    first = parts[0]
    if first.storage_offset() != 0:
        return False
    base, nbytes = first.untyped_storage().data_ptr(), first.numel() * first.element_size()
    return all(
        p.untyped_storage().data_ptr() == base
        and p.is_contiguous()
        and p.data_ptr() == first.data_ptr() + i * nbytes
        for i, p in enumerate(parts)
    )


def _joined(parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The joined tensor of consecutive views (see :func:`_consecutive`)."""
    first = parts[0]
    joined = torch.empty(0, dtype=first.dtype, device=first.device)
    shape = (sum(p.shape[0] for p in parts), *first.shape[1:])
    return joined.set_(first.untyped_storage(), 0, shape, first.stride())


def rotary_tables(
    attn: Any, tokens: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cos and signed sin ``[N, 1, 1, head]`` of ``VJEPA2RopeAttention`` for ``N`` tokens.

    The frequencies, positions and dtype are computed as ``transformers``'
    ``rotate_queries_or_keys`` does (in ``dtype``, on ``device``): section
    ``s`` (frame, row, column) of ``d_dim`` channels rotates channel ``2i``,
    ``2i + 1`` by ``pos_s * omega[j % (d_dim / 2)]`` for channel ``j``, its
    table ``repeat``-ed rather than interleaved, as there; channels past the
    three sections pass through (cos 1, sin 0). ``sin`` carries the sign of
    ``(-x[2i+1], x[2i])``: minus on even channels.
    """
    ids = torch.arange(tokens, device=device)
    per_frame = attn.grid_size * attn.grid_size
    frame = ids // per_frame
    row = (ids - per_frame * frame) // attn.grid_size
    col = (ids - per_frame * frame) - attn.grid_size * row
    half = attn.d_dim // 2
    omega = torch.arange(half, dtype=dtype, device=device)
    omega /= attn.d_dim / 2.0
    omega = 1.0 / 10000**omega
    cos_parts, sin_parts = [], []
    for pos in (frame, row, col):
        freq = pos.unsqueeze(-1) * omega  # [N, d/2] in dtype, as transformers
        cos_parts.append(freq.cos().repeat(1, 2))
        sin_parts.append(freq.sin().repeat(1, 2))
    rest = attn.attention_head_size - 3 * attn.d_dim
    cos = torch.cat([*cos_parts, torch.ones(tokens, rest, dtype=dtype, device=device)], dim=-1)
    sin = torch.cat([*sin_parts, torch.zeros(tokens, rest, dtype=dtype, device=device)], dim=-1)
    sign = torch.ones(attn.attention_head_size, dtype=dtype, device=device)
    sign[0::2] = -1
    return cos.view(tokens, 1, 1, -1), (sin * sign).view(tokens, 1, 1, -1)


_CHOOSER: FusedChooser[FusedVJEPA2Encoder] = FusedChooser(
    "video", unsupported_reason, FusedVJEPA2Encoder
)


def fused_encoder(model: torch.nn.Module, mode: str | bool = "auto") -> FusedVJEPA2Encoder | None:
    """The fused encoder of ``model``, or ``None`` to run the ``transformers`` module.

    Parameters
    ----------
    model
        The loaded video model.
    mode
        ``"auto"``: fused on CUDA devices when the model is supported;
        ``"on"``: fused whenever supported (compiled on CUDA, eager elsewhere);
        ``"off"``: never. ``True`` / ``False`` (YAML's bare ``on`` / ``off``)
        mean ``"on"`` / ``"off"``.

    Raises
    ------
    ValueError
        ``mode`` is not one of :data:`FUSED_MODES`.
    """
    return _CHOOSER(model, mode)
