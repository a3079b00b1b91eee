"""Llama / Qwen3 decoder with fused kernels: the same maths as ``transformers``' ``LlamaModel``.

What the text features need of a decoder-only model is the token mean of a
few hidden states over each word's tokens, not every state of every
position. This module runs the decoder the features use on the loaded
model's own weights and keeps only that:

- q, k and v come from one matrix product, and so do the MLP's gate and up
  projections: the weights are put side by side once and the model's
  parameters are re-pointed at views of that storage (no second copy of any
  weight; the ``transformers`` module keeps working on the same tensors);
- the rotary tables are the model's own (``model.rotary_emb``, so any rope
  type it supports), made once per batch width; RoPE, RMSNorm (and Qwen3's
  q/k norms), the SiLU gate and the residual adds are element-wise passes
  that ``torch.compile`` fuses;
- attention is causal SDPA without a padding mask: padding is on the right,
  so no real token can see it (the positions read are real tokens only),
  and SDPA can take its flash kernel; grouped k/v heads are not repeated;
- the forward stops after the deepest hidden state the layer selection
  uses; in that last layer, the output projection and the MLP run only on
  the positions of the words' tokens (the other positions' outputs are
  never read), and so does the final norm when the selection uses it;
- each needed state is reduced on the device to the mean over each word's
  tokens (one gather and one ``index_add`` per state), so a batch returns
  ``[states, words, D]`` float32 and nothing else.

On CUDA, :meth:`FusedCausalLM.plan` compiles the attention half and the MLP
half of a layer as two ``torch.compile`` graphs (no graph break, symbolic
batch and token counts, so one compile serves every layer and width) when
the stimulus needs enough forwards to pay for it (:data:`COMPILE_MIN_FORWARDS`);
otherwise the same functions run eagerly.

Which state ``transformers`` returns last depends on its version (the final
norm's output up to 4.x, for V-JEPA2 at least the last block's raw output in
5.x): :func:`last_state_is_normed` finds out from the installed version's
behaviour for the model's class, and this module returns the same one.

:func:`fused_text_model` decides (``features.fused``: ``auto``, ``on``,
``off``) and falls back to the ``transformers`` module (``None``) when the
model is not a ``LlamaModel`` / ``Qwen3Model`` this path reproduces or, with
``auto``, when it is not on a CUDA device.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from tribe_core.features.fused_choice import FusedChooser

log = logging.getLogger(__name__)

_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
SUPPORTED_CLASSES = ("LlamaModel", "Qwen3Model")
# Compile when a stimulus needs at least this many forwards (one per word once the
# context window slides). Llama-3.2-3B, float16, batch 8 on an H200
# (benchmarks/text_fused.py, docs/benchmarks.md "Text: the fused decoder"):
# compiling took 8.8 and 12.2 s in two runs and saves ~4.6 ms per forward over the
# eager fused path, so ~1,950-2,600 forwards to break even.
COMPILE_MIN_FORWARDS = 2500
# Inductor options of the compiled halves (None: Inductor's defaults).
COMPILE_OPTIONS: dict[str, Any] | None = None


@dataclass
class _Layer:
    """One decoder layer's tensors (the model's own parameters, or views of them)."""

    norm1: torch.Tensor
    qkv_w: torch.Tensor
    qkv_b: torch.Tensor | None
    q_norm: torch.Tensor | None
    k_norm: torch.Tensor | None
    o_w: torch.Tensor
    o_b: torch.Tensor | None
    norm2: torch.Tensor
    gate_up_w: torch.Tensor
    gate_up_b: torch.Tensor | None
    down_w: torch.Tensor
    down_b: torch.Tensor | None


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``LlamaRMSNorm`` / ``Qwen3RMSNorm``: float32 statistics, scaled in the input's dtype."""
    y = x.float()
    y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps)
    return weight * y.to(x.dtype)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x * cos + rotate_half(x) * sin`` (transformers' ``apply_rotary_pos_emb``)."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def _attention_half(
    h: torch.Tensor,
    norm1: torch.Tensor,
    qkv_w: torch.Tensor,
    qkv_b: torch.Tensor | None,
    q_norm: torch.Tensor | None,
    k_norm: torch.Tensor | None,
    o_w: torch.Tensor,
    o_b: torch.Tensor | None,
    cos: torch.Tensor,
    sin: torch.Tensor,
    heads: int,
    kv_heads: int,
    head_dim: int,
    scale: float,
    eps: float,
) -> torch.Tensor:
    """``h + self_attn(input_layernorm(h))`` of one layer, causal.

    ``h`` is ``[B * T, D]``, ``B`` contexts of ``T`` tokens (``T`` from the
    tables ``cos``/``sin`` ``[T, 1, head_dim]``): every input of the compiled
    halves is a tensor of its own, not a view, so that one graph serves all.
    """
    tokens = cos.shape[0]
    batch = h.shape[0] // tokens
    qkv = F.linear(_rms(h, norm1, eps), qkv_w, qkv_b).view(batch, tokens, -1)
    q, k, v = qkv.split([heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], dim=-1)
    q = q.view(batch, tokens, heads, head_dim)
    k = k.view(batch, tokens, kv_heads, head_dim)
    v = v.view(batch, tokens, kv_heads, head_dim)
    if q_norm is not None and k_norm is not None:  # Qwen3: per-head norms before the rotation
        q, k = _rms(q, q_norm, eps), _rms(k, k_norm, eps)
    q, k = _rope(q, cos, sin), _rope(k, cos, sin)  # cos/sin [T, 1, head_dim]
    attn = F.scaled_dot_product_attention(
        q.transpose(1, 2),
        k.transpose(1, 2),
        v.transpose(1, 2),
        is_causal=True,
        scale=scale,
        enable_gqa=heads != kv_heads,
    )  # [B, H, T, d]
    return h + F.linear(attn.transpose(1, 2).reshape(batch * tokens, heads * head_dim), o_w, o_b)


def _mlp_half(
    h: torch.Tensor,
    norm2: torch.Tensor,
    gate_up_w: torch.Tensor,
    gate_up_b: torch.Tensor | None,
    down_w: torch.Tensor,
    down_b: torch.Tensor | None,
    eps: float,
) -> torch.Tensor:
    """``h + mlp(post_attention_layernorm(h))``, ``h`` ``[N, D]`` (positions flattened)."""
    gate, up = F.linear(_rms(h, norm2, eps), gate_up_w, gate_up_b).chunk(2, dim=-1)
    return h + F.linear(F.silu(gate) * up, down_w, down_b)


def _halves(
    heads: int, kv_heads: int, head_dim: int, scale: float, eps: float
) -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    """The two halves with the model's constants bound (constants, not inputs, when compiled)."""

    def attention(
        h: torch.Tensor,
        norm1: torch.Tensor,
        qkv_w: torch.Tensor,
        qkv_b: torch.Tensor | None,
        q_norm: torch.Tensor | None,
        k_norm: torch.Tensor | None,
        o_w: torch.Tensor,
        o_b: torch.Tensor | None,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> torch.Tensor:
        return _attention_half(
            h, norm1, qkv_w, qkv_b, q_norm, k_norm, o_w, o_b, cos, sin,
            heads, kv_heads, head_dim, scale, eps,
        )  # fmt: skip

    def mlp(
        h: torch.Tensor,
        norm2: torch.Tensor,
        gate_up_w: torch.Tensor,
        gate_up_b: torch.Tensor | None,
        down_w: torch.Tensor,
        down_b: torch.Tensor | None,
    ) -> torch.Tensor:
        return _mlp_half(h, norm2, gate_up_w, gate_up_b, down_w, down_b, eps)

    return attention, mlp


def _tiny_config(config_cls: Any) -> Any:
    return config_cls(
        vocab_size=8, hidden_size=8, intermediate_size=8, num_hidden_layers=1,
        num_attention_heads=1, num_key_value_heads=1, head_dim=8, max_position_embeddings=16,
    )  # fmt: skip


@functools.cache
def _last_state_is_normed(class_name: str) -> bool:
    import transformers

    model_cls: Any = getattr(transformers, class_name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_cls(_tiny_config(model_cls.config_class)).eval()
        with torch.no_grad():
            model.norm.weight.fill_(3.0)  # the norm must change the state
            out = model(input_ids=torch.tensor([[1, 2, 3]]), output_hidden_states=True)
    return bool(torch.equal(out.hidden_states[-1], out.last_hidden_state))


def last_state_is_normed(model: torch.nn.Module) -> bool:
    """Whether the installed ``transformers``' last hidden state of ``model``'s class is normed.

    Read from behaviour (a 1-layer model of the same class, width 8), not
    from a version number.
    """
    return _last_state_is_normed(type(model).__name__)


def _eps(norm: Any, config: Any) -> float:
    return float(getattr(norm, "variance_epsilon", getattr(norm, "eps", config.rms_norm_eps)))


def _linear(module: Any) -> bool:
    return isinstance(module, torch.nn.Linear)


def unsupported_reason(model: torch.nn.Module) -> str | None:
    """Why ``model`` cannot take the fused path (``None``: it can)."""
    name = type(model).__name__
    if name not in SUPPORTED_CLASSES or not all(
        hasattr(model, a) for a in ("embed_tokens", "layers", "norm", "rotary_emb")
    ):
        return f"{name} is not a transformers {' / '.join(SUPPORTED_CLASSES)}"
    config: Any = model.config
    if model.training:
        return "the model is in training mode"
    if getattr(config, "hidden_act", None) != "silu":
        return f"hidden_act {getattr(config, 'hidden_act', None)!r} is not 'silu'"
    layers: Any = model.layers
    if not len(layers) or len(layers) != config.num_hidden_layers:
        return "the model's layers do not match num_hidden_layers"
    devices = {p.device for p in model.parameters()}
    dtypes = {p.dtype for p in model.parameters()}
    if len(devices) != 1 or len(dtypes) != 1 or next(iter(dtypes)) not in _DTYPES:
        return f"parameters on {devices} in {dtypes} (one device and one float dtype needed)"
    qwen = name == "Qwen3Model"
    for layer in layers:
        attn: Any = getattr(layer, "self_attn", None)
        mlp: Any = getattr(layer, "mlp", None)
        if attn is None or mlp is None:
            return f"unexpected decoder layer {type(layer).__name__}"
        if not all(
            _linear(getattr(attn, n, None)) for n in ("q_proj", "k_proj", "v_proj", "o_proj")
        ):
            return "unexpected attention projections"
        if not all(_linear(getattr(mlp, n, None)) for n in ("gate_proj", "up_proj", "down_proj")):
            return "unexpected MLP"
        if getattr(attn, "sliding_window", None) is not None:
            return "sliding-window attention layers"
        if qwen != (hasattr(attn, "q_norm") and hasattr(attn, "k_norm")):
            return "q/k norms present where not expected, or missing"
        norms = [layer.input_layernorm, layer.post_attention_layernorm]
        norms += [attn.q_norm, attn.k_norm] if qwen else []
        if any(
            not type(n).__name__.endswith("RMSNorm") or not isinstance(n.weight, torch.Tensor)
            for n in norms
        ):
            return "unexpected normalisation layers"
        biases = [getattr(attn, n).bias is None for n in ("q_proj", "k_proj", "v_proj")]
        if len(set(biases)) != 1 or (mlp.gate_proj.bias is None) != (mlp.up_proj.bias is None):
            return "q/k/v or gate/up biases only partly present"
        heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
        head_dim = attn.q_proj.out_features // heads
        if head_dim % 2 or heads % kv_heads or attn.k_proj.out_features != kv_heads * head_dim:
            return f"head layout {heads} / {kv_heads} heads of {head_dim} not supported"
    return None


def _consecutive(parts: Sequence[torch.Tensor]) -> bool:
    """Whether ``parts`` are contiguous views one after another from the start of one storage."""
    first = parts[0]
    if first.storage_offset() != 0:
        return False
    base, offset = first.untyped_storage().data_ptr(), 0
    for p in parts:
        if p.untyped_storage().data_ptr() != base or not p.is_contiguous():
            return False
        if p.data_ptr() != base + offset:
            return False
        offset += p.numel() * p.element_size()
    return True


def _joined(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """The joined tensor of consecutive views (see :func:`_consecutive`)."""
    first = parts[0]
    joined = torch.empty(0, dtype=first.dtype, device=first.device)
    shape = (sum(p.shape[0] for p in parts), *first.shape[1:])
    return joined.set_(first.untyped_storage(), 0, shape, first.stride())


def _join(linears: Sequence[torch.nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One weight (and bias) for ``linears`` side by side; the modules re-pointed at its views."""
    weights = tuple(lin.weight for lin in linears)
    has_bias = linears[0].bias is not None
    biases = tuple(lin.bias for lin in linears if lin.bias is not None)
    if _consecutive(weights) and (not has_bias or _consecutive(biases)):
        return _joined(weights), _joined(biases) if has_bias else None
    with torch.no_grad():
        weight = torch.cat(weights)
        bias = torch.cat(biases) if has_bias else None
    start = 0
    for lin in linears:  # the module now reads the joined storage
        stop = start + lin.weight.shape[0]
        lin.weight.data = weight[start:stop]
        if bias is not None:
            lin.bias.data = bias[start:stop]
        start = stop
    return weight, bias


class FusedCausalLM:
    """The decoder of a loaded ``LlamaModel`` / ``Qwen3Model``, with fused kernels.

    Parameters
    ----------
    model
        The model in eval mode (see :func:`unsupported_reason`); its
        parameters are referenced, not copied (q/k/v and gate/up are
        re-pointed at views of one joined weight each).
    compile
        ``torch.compile`` the layer halves (default: decided by :meth:`plan`
        on CUDA devices; eager elsewhere).
    compile_options
        Inductor options (default: :data:`COMPILE_OPTIONS`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        compile: bool | None = None,
        compile_options: dict[str, Any] | None = None,
    ) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the fused text path does not support this model: {reason}")
        self.model: Any = model
        config: Any = model.config
        self.config = config
        self.device = next(model.parameters()).device
        self.compile = bool(compile)
        self._compile_auto = compile is None
        self._options = COMPILE_OPTIONS if compile_options is None else compile_options
        self._compiled: tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]] | None = (
            None
        )
        self.n_states = int(config.num_hidden_layers) + 1
        self.normed_last = last_state_is_normed(model)
        self._tables: dict[tuple[int, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}
        self._bind()

    def plan(self, n_forwards: int) -> None:
        """Whether to compile, from the number of forwards about to run.

        Only when ``compile`` was left to the default on a CUDA device:
        compiling costs seconds once per process and saves milliseconds per
        forward, so fewer than :data:`COMPILE_MIN_FORWARDS` run eagerly. Once
        compiled, it stays so.
        """
        if self._compile_auto and self.device.type == "cuda" and self._compiled is None:
            self.compile = n_forwards >= COMPILE_MIN_FORWARDS

    def _fns(self) -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
        """``(attention half, MLP half)``: compiled (made on first use) or eager."""
        if not self.compile:
            return _halves(self.heads, self.kv_heads, self.head_dim, self.scale, self.eps)
        if self._compiled is None:
            attention, mlp = _halves(self.heads, self.kv_heads, self.head_dim, self.scale, self.eps)
            self._compiled = (
                torch.compile(attention, fullgraph=True, options=self._options),
                torch.compile(mlp, fullgraph=True, options=self._options),
            )
        return self._compiled

    def _bind(self) -> None:
        """Reference the model's parameters; join q/k/v and gate/up."""
        self.layers: list[_Layer] = []
        for layer in self.model.layers:
            attn, mlp = layer.self_attn, layer.mlp
            qkv_w, qkv_b = _join([attn.q_proj, attn.k_proj, attn.v_proj])
            gate_up_w, gate_up_b = _join([mlp.gate_proj, mlp.up_proj])
            q_norm = getattr(attn, "q_norm", None)
            k_norm = getattr(attn, "k_norm", None)
            self.layers.append(
                _Layer(
                    layer.input_layernorm.weight,
                    qkv_w,
                    qkv_b,
                    None if q_norm is None else q_norm.weight,
                    None if k_norm is None else k_norm.weight,
                    attn.o_proj.weight,
                    attn.o_proj.bias,
                    layer.post_attention_layernorm.weight,
                    gate_up_w,
                    gate_up_b,
                    mlp.down_proj.weight,
                    mlp.down_proj.bias,
                )  # fmt: skip
            )
        attn0 = self.model.layers[0].self_attn
        self.heads = int(self.config.num_attention_heads)
        self.kv_heads = int(self.config.num_key_value_heads)
        self.head_dim = attn0.q_proj.out_features // self.heads
        self.scale = float(getattr(attn0, "scaling", self.head_dim**-0.5))
        self.eps = _eps(self.model.layers[0].input_layernorm, self.config)
        self.final_eps = _eps(self.model.norm, self.config)
        self._bound = self._fingerprint()

    def _fingerprint(self) -> tuple[tuple[int, torch.dtype, torch.device], ...]:
        """Storage pointers of every parameter: they change when the model is moved or cast."""
        return tuple((p.data_ptr(), p.dtype, p.device) for p in self.model.parameters())

    def _check_bound(self) -> None:
        if self._fingerprint() != self._bound:  # moved, cast or reloaded since: bind again
            self._tables.clear()
            self.device = next(self.model.parameters()).device
            self._bind()

    def _rotary(self, tokens: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's own cos/sin ``[T, 1, head_dim]`` for positions ``0..T-1``."""
        key = (tokens, dtype)
        if key not in self._tables:
            positions = torch.arange(tokens, device=self.device)[None]
            like = torch.empty(1, tokens, 1, dtype=dtype, device=self.device)
            cos, sin = self.model.rotary_emb(like, positions)  # [1, T, head_dim] in dtype
            self._tables.clear()  # one width at a time: widths change batch to batch
            self._tables[key] = (cos[0, :, None].contiguous(), sin[0, :, None].contiguous())
        return self._tables[key]

    def states_needed(self, states: Sequence[int]) -> list[int]:
        """``states`` sorted and checked against the model's ``num_hidden_layers + 1``."""
        needed = sorted(set(int(s) for s in states))
        if not needed or needed[0] < 0 or needed[-1] >= self.n_states:
            raise ValueError(f"hidden states {list(states)} outside 0..{self.n_states - 1}")
        return needed

    def word_means(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        owners: torch.Tensor,
        counts: torch.Tensor,
        states: Sequence[int],
    ) -> torch.Tensor:
        """Mean over each word's tokens of the hidden states ``states``.

        Parameters
        ----------
        input_ids
            ``[B, T]`` token ids, right-padded, on the model's device.
        positions
            ``[P]`` flat positions ``row * T + token`` of every word's tokens.
        owners
            ``[P]`` the word (``0..M-1``) each position belongs to.
        counts
            ``[M]`` tokens per word (float32).
        states
            Hidden-state indices (``0``: the embedding output, ``i``: layer
            ``i``'s, the last as ``transformers`` returns it).

        Returns
        -------
        torch.Tensor
            ``[len(states), M, D]`` float32, in the order of sorted ``states``.
        """
        self._check_bound()
        needed = self.states_needed(states)
        attention, mlp = self._fns()
        tokens = input_ids.shape[1]
        n_words = counts.shape[0]
        embed = self.model.embed_tokens
        h = F.embedding(input_ids.reshape(-1), embed.weight, embed.padding_idx)  # [B * T, D]
        width = h.shape[-1]

        def mean(rows: torch.Tensor) -> torch.Tensor:  # rows [P, D] -> [M, D] float32
            total = torch.zeros(n_words, width, dtype=torch.float32, device=rows.device)
            return total.index_add_(0, owners, rows.float()) / counts[:, None]

        out: dict[int, torch.Tensor] = {}
        if needed[0] == 0:
            out[0] = mean(h.index_select(0, positions))
        deepest = needed[-1]
        if deepest > 0:
            cos, sin = self._rotary(tokens, h.dtype)
        for i in range(deepest):
            layer = self.layers[i]
            if self.compile:
                torch._dynamo.maybe_mark_dynamic(h, 0)
                torch._dynamo.maybe_mark_dynamic(cos, 0)
                torch._dynamo.maybe_mark_dynamic(sin, 0)
            h = attention(
                h, layer.norm1, layer.qkv_w, layer.qkv_b, layer.q_norm, layer.k_norm,
                layer.o_w, layer.o_b, cos, sin,
            )  # fmt: skip
            last = i == deepest - 1
            # in the last layer, only the positions read: the other outputs are never used
            flat = h.index_select(0, positions) if last else h
            if self.compile:
                torch._dynamo.maybe_mark_dynamic(flat, 0)
            flat = mlp(
                flat, layer.norm2, layer.gate_up_w, layer.gate_up_b, layer.down_w, layer.down_b
            )
            if last:
                if i + 1 == self.n_states - 1 and self.normed_last:
                    flat = _rms(flat, self.model.norm.weight, self.final_eps)
                out[i + 1] = mean(flat)
            else:
                h = flat
                if i + 1 in needed:
                    out[i + 1] = mean(h.index_select(0, positions))
        return torch.stack([out[s] for s in needed])


_CHOOSER: FusedChooser[FusedCausalLM] = FusedChooser("text", unsupported_reason, FusedCausalLM)


def fused_text_model(model: torch.nn.Module, mode: str | bool = "auto") -> FusedCausalLM | None:
    """The fused decoder of ``model``, or ``None`` to run the ``transformers`` module.

    Parameters
    ----------
    model
        The loaded text model.
    mode
        ``"auto"``: fused on CUDA devices when the model is supported;
        ``"on"``: fused whenever supported (compiled only when :meth:`~FusedCausalLM.plan`
        says so, on CUDA); ``"off"``: never. ``True`` / ``False`` (YAML's bare
        ``on`` / ``off``) mean ``"on"`` / ``"off"``.

    Raises
    ------
    ValueError
        ``mode`` is not one of ``auto``, ``on``, ``off``.
    """
    return _CHOOSER(model, mode)
