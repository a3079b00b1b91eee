"""Feature settings of each modality, read from a TRIBE checkpoint's ``config.yaml``.

The released ``config.yaml`` is a dump of the reference experiment: its
``data`` section holds one extractor section per modality, in neuralset's
field names::

    data:
      frequency: 2.0
      layers_to_use: [0.5, 0.75, 1.0]      # overrides every extractor's `layers`
      n_layers_to_use: null                # or linspace(0, 1, n)
      layer_aggregation: group_mean        # set on every extractor
      text_feature:  {name: HuggingFaceText, model_name, layers, cache_n_layers,
                      token_aggregation, contextualized, batch_size, frequency, ...}
      audio_feature: {name: Wav2VecBert, model_name, layers, norm_audio, ...}
      video_feature: {name: HuggingFaceVideo, clip_duration, num_frames,
                      image: {model_name, layers, cache_n_layers, token_aggregation, ...}}

(``tribev2.main.Data.model_post_init`` applies ``layers_to_use`` /
``layer_aggregation`` / ``frequency`` to the extractors; we do the same.)
Nothing here assumes a model family, a depth or a number of layer groups:
the checkpoint's ``model_build_args.feature_dims`` is the contract, checked
by :func:`check_spec_against_dims` before any extraction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tribe_core.errors import TribeConfigError
from tribe_core.features.fused_choice import fused_mode
from tribe_core.features.layers import AGGREGATIONS, n_layer_groups

MODALITIES = ("text", "audio", "video")
DTYPES = ("float32", "bfloat16", "float16")
# neuralset's defaults where a config section leaves a field out
_DEFAULT_MODELS = {"audio": "facebook/w2v-bert-2.0"}
_DEFAULT_LAYERS = 2 / 3
_VJEPA2_FRAMES = 64


@dataclass(frozen=True)
class FeatureSpec:
    """How to extract one modality's features.

    Attributes
    ----------
    modality
        ``"text"``, ``"audio"`` or ``"video"``.
    model
        Hub id or local directory (``save_pretrained`` layout).
    layers
        Relative depth(s) in ``[0, 1]`` or ``"all"``.
    layer_aggregation
        ``"group_mean"``, ``"mean"``, ``"sum"`` or ``None``.
    cache_n_layers
        Equidistant hidden states kept before layer selection (text and video
        only, as in the reference); ``None`` keeps all.
    token_aggregation
        How tokens/patches are reduced (``"mean"``; text and video).
    frequency_hz
        Feature rate (2 Hz).
    clip_duration_s, n_frames
        Video: each sample sees ``n_frames`` frames spread over the
        ``clip_duration_s`` seconds before it.
    chunk_max_s, chunk_min_s
        Audio/video are encoded in chunks like the reference's
        ``ChunkEvents(max_duration=60, min_duration=30)``; ``None`` disables.
    batch_size
        Contexts (text), chunks (audio) or clips (video) per forward.
    device, dtype
        Torch device (``"auto"``: CUDA if available) and compute dtype
        (``"float32"`` is the reference; ``"bfloat16"`` is faster on GPUs).
    revision
        Hub revision (commit) for hub ids; recorded in the store attrs.
    contextualized, norm_audio
        Text: encode the word in its context; audio: z-score the waveform.
    fused
        Text and video: ``"auto"`` (fused kernels on CUDA), ``"on"`` or ``"off"``
        (:mod:`tribe_core.features.llama_fused`, :mod:`tribe_core.features.vjepa2_fused`;
        config ``features.fused``).
    context_stride
        Text: words per forward once the context window slides (1: one
        forward per word, the reference's outputs; S > 1 reads S consecutive
        words in the last one's context, each seeing 1024 - S + 1 to 1024
        preceding words; see :mod:`tribe_core.features.text`).
    segment_s
        Text: bin words in windows of this length as the reference's
        inference segments do (``data.duration_trs`` TRs of
        ``1 / data.neuro.frequency`` s, 100 s in the release), so a word
        straddling a window boundary counts in both; ``None``: one window.
    expected_dims
        ``(n_layer_groups, hidden_size)`` the checkpoint wants, if known.
    """

    modality: str
    model: str
    layers: float | tuple[float, ...] | str = (0.5, 0.75, 1.0)
    layer_aggregation: str | None = "group_mean"
    cache_n_layers: int | None = None
    token_aggregation: str = "mean"
    frequency_hz: float = 2.0
    clip_duration_s: float = 4.0
    n_frames: int = _VJEPA2_FRAMES
    chunk_max_s: float | None = 60.0
    chunk_min_s: float | None = 30.0
    batch_size: int = 4
    device: str = "cpu"
    dtype: str = "float32"
    revision: str | None = None
    contextualized: bool = True
    norm_audio: bool = True
    context_stride: int = 1
    fused: str = "auto"
    segment_s: float | None = None
    expected_dims: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise TribeConfigError(f"unknown modality {self.modality!r}; expected {MODALITIES}")
        if self.layer_aggregation not in AGGREGATIONS:
            raise TribeConfigError(
                f"{self.modality}: layer_aggregation {self.layer_aggregation!r} is not one of "
                f"{AGGREGATIONS}"
            )
        if self.dtype not in DTYPES:
            raise TribeConfigError(f"{self.modality}: dtype {self.dtype!r} is not one of {DTYPES}")
        if isinstance(self.layers, list):
            object.__setattr__(self, "layers", tuple(float(x) for x in self.layers))
        if self.device == "auto":
            import torch

            object.__setattr__(self, "device", "cuda" if torch.cuda.is_available() else "cpu")
        if self.token_aggregation != "mean":
            raise TribeConfigError(
                f"{self.modality}: token_aggregation {self.token_aggregation!r} is not supported "
                "(the released and mini checkpoints use 'mean')"
            )
        try:  # YAML reads a bare on/off as a boolean
            object.__setattr__(self, "fused", fused_mode(self.fused))
        except ValueError as exc:
            raise TribeConfigError(f"{self.modality}: {exc}") from None
        if not isinstance(self.context_stride, int) or self.context_stride < 1:
            raise TribeConfigError(
                f"{self.modality}: context_stride must be an integer >= 1, "
                f"got {self.context_stride!r}"
            )
        if self.batch_size < 1 or self.n_frames < 1 or self.frequency_hz <= 0:
            raise TribeConfigError(f"{self.modality}: batch_size, n_frames, frequency must be > 0")

    @property
    def layer_subselection(self) -> int | None:
        """``cache_n_layers`` as the reference applies it (not for audio)."""
        return None if self.modality == "audio" else self.cache_n_layers

    def n_layer_groups(self, n_hidden_states: int) -> int:
        """Layer groups this spec makes from a model with ``n_hidden_states``."""
        return n_layer_groups(
            n_hidden_states, self.layers, self.layer_aggregation, self.layer_subselection
        )


def modality_dtype(dtype: str | Mapping[str, str] | None, modality: str) -> str:
    """Compute dtype of one modality from ``features.dtype``.

    ``dtype`` is one dtype for every modality, or a mapping ``modality ->
    dtype`` (a modality it leaves out runs in ``float32``, the reference's).
    On random full-size weights (H200, bf16 vs fp16 against fp32), Llama text
    keeps a per-step cosine >= 0.999 in ``float16`` (0.99989) but not in
    ``bfloat16`` (0.9966 over 1024-word contexts), while V-JEPA2 and w2v-BERT
    keep it in ``bfloat16``: hence ``{text: float16, audio: bfloat16, video:
    bfloat16}`` as the fast setting.
    """
    if dtype is None:
        return "float32"
    value = dtype if isinstance(dtype, str) else dtype.get(modality, "float32")
    if value not in DTYPES:
        raise TribeConfigError(f"features.dtype for {modality}: {value!r} is not one of {DTYPES}")
    return value


def _layers_value(value: Any, where: str) -> float | tuple[float, ...] | str:
    if isinstance(value, str):
        if value != "all":
            raise TribeConfigError(f"{where}: layers must be fractions or 'all', got {value!r}")
        return value
    if isinstance(value, Sequence):
        return tuple(float(x) for x in value)
    return float(value)


def _segment_seconds(data: Mapping[str, Any]) -> float | None:
    """``duration_trs * TR`` of the reference's segments, if the config says."""
    neuro = data.get("neuro")
    frequency = neuro.get("frequency") if isinstance(neuro, Mapping) else None
    n_trs = data.get("duration_trs")
    if not frequency or not n_trs:
        return None
    return float(n_trs) / float(frequency)


def _normalise_dims(value: Any, modality: str) -> tuple[int, int]:
    dims = [int(v) for v in (value if isinstance(value, Sequence) else [value])]
    if len(dims) == 1:
        return (1, dims[0])
    if len(dims) != 2:
        raise TribeConfigError(
            f"feature_dims[{modality!r}] must be (n_layer_groups, dim), got {value!r}"
        )
    return (dims[0], dims[1])


def feature_specs_from_config(
    checkpoint_config: Mapping[str, Any],
    feature_dims: Mapping[str, Any],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, FeatureSpec]:
    """One :class:`FeatureSpec` per modality of ``feature_dims``, in its order.

    Parameters
    ----------
    checkpoint_config
        The checkpoint's parsed ``config.yaml`` (needs its ``data`` section).
    feature_dims
        ``model_build_args.feature_dims``: modality -> ``(n_layer_groups, dim)``.
    overrides
        modality -> field -> value, e.g. ``{"text": {"model": "/models/llama",
        "batch_size": 16, "device": "cuda", "dtype": "bfloat16"}}``. Any
        :class:`FeatureSpec` field except ``modality`` may be replaced.

    Raises
    ------
    TribeConfigError
        A modality's section is missing or malformed, or an override is unknown.
    """
    data = checkpoint_config.get("data")
    if not isinstance(data, Mapping):
        raise TribeConfigError("checkpoint config.yaml has no 'data' section")
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(feature_dims)
    if unknown:
        raise TribeConfigError(
            f"feature overrides name modalities {sorted(unknown)} the checkpoint does not use "
            f"(it uses {list(feature_dims)})"
        )
    global_layers: Any = data.get("layers_to_use")
    if global_layers is None and data.get("n_layers_to_use") is not None:
        global_layers = np.linspace(0, 1, int(data["n_layers_to_use"])).tolist()
    aggregation = data.get("layer_aggregation", "group_mean")
    frequency = data.get("frequency")
    fields = {f.name for f in dataclasses.fields(FeatureSpec)} - {"modality"}

    specs: dict[str, FeatureSpec] = {}
    for modality, dims in feature_dims.items():
        if modality not in MODALITIES:
            raise TribeConfigError(f"checkpoint feature_dims names unknown modality {modality!r}")
        key = f"{modality}_feature"
        section = data.get(key)
        if not isinstance(section, Mapping):
            raise TribeConfigError(f"checkpoint config.yaml has no data.{key} section")
        model_section = section.get("image") if modality == "video" else section
        if not isinstance(model_section, Mapping):
            raise TribeConfigError(f"checkpoint config.yaml has no data.{key}.image section")
        model = model_section.get("model_name", _DEFAULT_MODELS.get(modality))
        if not model:
            raise TribeConfigError(f"data.{key} names no model_name")
        layers = (
            global_layers
            if global_layers is not None
            else model_section.get("layers", _DEFAULT_LAYERS)
        )
        kwargs: dict[str, Any] = {
            "modality": modality,
            "model": str(model),
            "layers": _layers_value(layers, f"data.{key}"),
            "layer_aggregation": aggregation,
            "cache_n_layers": model_section.get("cache_n_layers"),
            "token_aggregation": model_section.get("token_aggregation", "mean"),
            "frequency_hz": float(
                frequency if frequency is not None else section.get("frequency", 2.0)
            ),
            "expected_dims": _normalise_dims(dims, modality),
        }
        if modality == "text":
            kwargs["contextualized"] = bool(section.get("contextualized", True))
            kwargs["batch_size"] = int(section.get("batch_size", 4))
            kwargs["segment_s"] = _segment_seconds(data)
        if modality == "audio":
            kwargs["norm_audio"] = bool(section.get("norm_audio", True))
        if modality == "video":
            clip = section.get("clip_duration")
            kwargs["clip_duration_s"] = float(
                clip if clip is not None else 1 / kwargs["frequency_hz"]
            )
            n_frames = section.get("num_frames")
            kwargs["n_frames"] = int(n_frames) if n_frames is not None else _VJEPA2_FRAMES
            kwargs["batch_size"] = 1
        for name, value in dict(overrides.get(modality, {})).items():
            if name not in fields:
                raise TribeConfigError(
                    f"feature override {modality}.{name} is not a feature setting "
                    f"(known: {sorted(fields)})"
                )
            if value is not None or name in ("revision", "cache_n_layers"):
                kwargs[name] = value
        specs[modality] = FeatureSpec(**kwargs)
    return specs


def check_spec_against_dims(
    spec: FeatureSpec,
    n_hidden_states: int,
    hidden_size: int,
    feature_dims: Mapping[str, Any] | None = None,
) -> tuple[int, int]:
    """Check that ``spec``'s model gives the layout the checkpoint expects.

    Parameters
    ----------
    spec
        The modality's settings.
    n_hidden_states, hidden_size
        What the model gives (see :func:`hidden_state_shape`).
    feature_dims
        The checkpoint's ``feature_dims``; defaults to ``spec.expected_dims``.

    Returns
    -------
    ``(n_layer_groups, hidden_size)`` the extraction will produce.

    Raises
    ------
    TribeConfigError
        Naming the modality, what the checkpoint wants and what the model gives.
    """
    got = (spec.n_layer_groups(n_hidden_states), int(hidden_size))
    if feature_dims is not None:
        if spec.modality not in feature_dims:
            raise TribeConfigError(
                f"{spec.modality}: the checkpoint has no feature_dims entry for this modality "
                f"(it has {list(feature_dims)})"
            )
        want: tuple[int, int] | None = _normalise_dims(feature_dims[spec.modality], spec.modality)
    else:
        want = spec.expected_dims
    if want is not None and tuple(want) != got:
        raise TribeConfigError(
            f"{spec.modality} features: the checkpoint wants (layer groups, dim) = {tuple(want)} "
            f"but model {spec.model!r} with {n_hidden_states} hidden states of size {hidden_size}, "
            f"layers={spec.layers!r}, layer_aggregation={spec.layer_aggregation!r}, "
            f"cache_n_layers={spec.layer_subselection!r} gives {got}. Use the model the "
            "checkpoint was trained with (or a mirror of the same weights)."
        )
    return got
