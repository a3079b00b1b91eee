"""Random-weight TRIBE v2 checkpoints in the released layout (demo, tests, benchmarks).

:func:`build_tribe_checkpoint` writes one whose ``config.yaml`` names local
feature models under the same keys as the released config
(:func:`data_config_for`), so the real reading path
(:func:`tribe_core.features.feature_specs_from_config`) is the one exercised;
:func:`save_random_checkpoint` writes any architecture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, cast

import torch

from tribe_core.encoder.config import (
    EncoderArchitecture,
    architecture_from_config,
    dump_config_yaml,
)
from tribe_core.encoder.files import CKPT_NAME, CONFIG_NAME, STATE_PREFIX
from tribe_core.encoder.model import RotaryEmbedding, TribeEncoder
from tribe_core.features._hf import hidden_state_shape
from tribe_core.features.layers import n_layer_groups
from tribe_core.io.atomic import atomic_path

RELEASED_LAYERS = [0.5, 0.75, 1.0]
RELEASED_AGGREGATION = "group_mean"
MINI_LAYERS = 2 / 3
MINI_AGGREGATION = "mean"
N_VERTICES = 20484


def data_config_for(
    models: Mapping[str, str],
    layers: float | list[float],
    layer_aggregation: str | None,
    *,
    clip_duration_s: float = 4.0,
    num_frames: int | None = None,
    cache_n_layers: int | None = None,
    frequency_hz: float = 2.0,
) -> dict[str, Any]:
    """Return a ``data`` section naming ``models`` (modality -> hub id or directory).

    A list of ``layers`` goes to ``data.layers_to_use`` (released layout,
    which overrides every extractor's ``layers``); a single fraction goes to
    each extractor's ``layers`` with ``layers_to_use: null`` (mini layout).
    ``num_frames=None`` keeps the reference's 64 frames per V-JEPA2 clip.
    """
    is_list = not isinstance(layers, int | float)
    layer_value: Any = (
        float(layers) if isinstance(layers, int | float) else [float(x) for x in layers]
    )
    common = {
        "layers": layer_value,
        "layer_aggregation": layer_aggregation,
        "token_aggregation": "mean",
        "cache_n_layers": cache_n_layers,
        "device": "auto",
    }
    data: dict[str, Any] = {
        "frequency": float(frequency_hz),
        "layers_to_use": layer_value if is_list else None,
        "n_layers_to_use": None,
        "layer_aggregation": layer_aggregation,
        "features_to_use": [m for m in ("text", "audio", "video") if m in models],
        "duration_trs": 100,
        "neuro": {"name": "FmriExtractor", "frequency": 1.0, "offset": 5},
    }
    if "text" in models:
        data["text_feature"] = {
            "name": "HuggingFaceText",
            "event_types": "Word",
            "model_name": str(models["text"]),
            "aggregation": "sum",
            "frequency": float(frequency_hz),
            "contextualized": True,
            "batch_size": 4,
            "allow_missing": True,
            **common,
        }
    if "audio" in models:
        data["audio_feature"] = {
            "name": "Wav2VecBert",
            "event_types": "Audio",
            "model_name": str(models["audio"]),
            "aggregation": "sum",
            "frequency": float(frequency_hz),
            "norm_audio": True,
            "normalized": True,
            "allow_missing": True,
            **common,
        }
    if "video" in models:
        data["video_feature"] = {
            "name": "HuggingFaceVideo",
            "event_types": "Video",
            "aggregation": "sum",
            "frequency": float(frequency_hz),
            "clip_duration": float(clip_duration_s),
            "num_frames": num_frames,
            "allow_missing": True,
            "image": {"name": "HuggingFaceImage", "model_name": str(models["video"]), **common},
        }
    return data


def random_config(
    *,
    feature_dims: Mapping[str, tuple[int, int]],
    hidden: int,
    depth: int,
    heads: int,
    low_rank_head: int | None,
    data_config: Mapping[str, Any] | None = None,
    n_output_timesteps: int = 100,
) -> dict[str, Any]:
    """A ``config.yaml`` dict shaped like the release, with training-time subject settings.

    ``data_config`` is merged (shallowly) over the default ``data`` section.
    """
    data: dict[str, Any] = {
        "features_to_use": list(feature_dims),
        "frequency": 2,
        "duration_trs": n_output_timesteps,
        "overlap_trs_train": 0,
        "layers_to_use": [0.5, 0.75, 1.0],
        "layer_aggregation": "group_mean",
        "neuro": {
            "name": "FmriExtractor",
            "frequency": 1,
            "offset": 5,
            "projection": {"name": "SurfaceProjector", "mesh": "fsaverage5"},
        },
        "feature_dims_seen": {k: tuple(int(x) for x in v) for k, v in feature_dims.items()},
    }
    data.update(dict(data_config or {}))
    encoder = {
        "heads": heads,
        "depth": depth,
        "cross_attend": False,
        "causal": False,
        "attn_flash": False,
        "attn_dropout": 0.0,
        "ff_mult": 4,
        "ff_dropout": 0.0,
        "use_scalenorm": True,
        "use_rmsnorm": False,
        "rel_pos_bias": False,
        "alibi_pos_bias": False,
        "rotary_pos_emb": True,
        "rotary_xpos": False,
        "residual_attn": False,
        "scale_residual": True,
        "layer_dropout": 0.0,
        "name": "TransformerEncoder",
    }
    model = {
        "projector": {
            "input_size": None,
            "hidden_sizes": None,
            "norm_layer": "layer",
            "activation_layer": "gelu",
            "bias": True,
            "dropout": 0.0,
            "name": "Mlp",
        },
        "combiner": None,
        "encoder": encoder,
        "time_pos_embedding": True,
        "subject_embedding": False,
        # Training-time values, as in the release: inference overrides them.
        "subject_layers": {
            "n_subjects": 4,
            "bias": True,
            "init_id": False,
            "mode": "gather",
            "subject_dropout": 0.1,
            "average_subjects": False,
            "name": "SubjectLayers",
        },
        "hidden": hidden,
        "max_seq_len": 1024,
        "dropout": 0.0,
        "extractor_aggregation": "cat",
        "layer_aggregation": "cat",
        "linear_baseline": False,
        "modality_dropout": 0.3,
        "temporal_dropout": 0.0,
        "low_rank_head": low_rank_head,
        "temporal_smoothing": None,
        "name": "FmriEncoder",
    }
    return {
        "brain_model_config": model,
        "data": data,
        "average_subjects": False,
        "seed": 33,
        "infra": {"folder": PurePosixPath("/checkpoint/tribe/random"), "gpus_per_node": 1},
    }


@torch.no_grad()
def _fill_random(model: TribeEncoder, seed: int) -> None:
    """Deterministic init: PyTorch-like Linear bounds, normal subject layer, unit norms."""
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    for name, param in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("g", "residual_scale"):
            param.fill_(1.0)
        elif name == "time_pos_embed":
            param.normal_(0.0, 1.0, generator=gen)
        elif name.startswith("predictor."):
            fan_in = model.predictor.weights.shape[1]
            param.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=gen)
        else:
            module = cast(torch.nn.Linear, model.get_submodule(name.rsplit(".", 1)[0]))
            bound = 1.0 / math.sqrt(module.in_features)
            param.uniform_(-bound, bound, generator=gen)
    rotary: RotaryEmbedding = model.encoder.rotary_pos_emb
    dim = model.arch.rotary_dim
    rotary.inv_freq.copy_(1.0 / (10000.0 ** (torch.arange(0, dim, 2).float() / dim)))


def random_encoder(
    arch: EncoderArchitecture,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    config: Mapping[str, Any] | None = None,
) -> TribeEncoder:
    """Build a :class:`TribeEncoder` with deterministic random weights on ``device``."""
    with torch.device("meta"):
        model = TribeEncoder(arch, config)
    model = model.to_empty(device=device)
    _fill_random(model, seed)
    return model.eval().requires_grad_(False)


def save_random_checkpoint(
    out_dir: str | Path,
    *,
    feature_dims: Mapping[str, tuple[int, int]],
    hidden: int,
    depth: int,
    heads: int,
    n_outputs: int,
    low_rank_head: int | None,
    n_output_timesteps: int,
    data_config: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """Write ``config.yaml`` + ``best.ckpt`` (released Lightning layout) with random weights.

    Parameters
    ----------
    out_dir
        Model directory to create (loadable by ``load_encoder(out_dir)``).
    feature_dims
        ``{modality: (n_layers, dim)}``; its order is the modality order.
    hidden, depth, heads, low_rank_head
        Architecture (``hidden`` divisible by the number of modalities and by
        ``heads``).
    n_outputs, n_output_timesteps
        Vertices and output TRs per forward.
    data_config
        Merged into the config's ``data`` section.
    seed
        The same seed gives the same weights.

    Returns
    -------
    Path
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    dims = {str(k): (int(v[0]), int(v[1])) for k, v in feature_dims.items()}
    config = random_config(
        feature_dims=dims,
        hidden=hidden,
        depth=depth,
        heads=heads,
        low_rank_head=low_rank_head,
        data_config=data_config,
        n_output_timesteps=n_output_timesteps,
    )
    build_args = {
        "feature_dims": dims,
        "n_outputs": int(n_outputs),
        "n_output_timesteps": int(n_output_timesteps),
    }
    arch = architecture_from_config(config, build_args, source=str(out_dir))
    model = random_encoder(arch, seed=seed)
    ckpt = {
        "state_dict": {STATE_PREFIX + k: v.contiguous() for k, v in model.state_dict().items()},
        "model_build_args": build_args,
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": "2.5.0",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / CONFIG_NAME) as tmp:
        dump_config_yaml(config, tmp)
    with atomic_path(out_dir / CKPT_NAME) as tmp:
        torch.save(ckpt, tmp)
    return out_dir


def build_tribe_checkpoint(
    out_dir: Path,
    models: dict[str, Path],
    layers: float | list[float],
    aggregation: str | None,
    *,
    seed: int = 0,
    hidden: int = 96,
    depth: int = 1,
    heads: int = 2,
    low_rank_head: int | None = 8,
) -> Path:
    """Write a random TRIBE checkpoint whose config names ``models`` (released layout).

    ``models`` maps each modality to a local feature model (``save_pretrained``
    layout); ``feature_dims`` follow from their depth and width with ``layers``
    and ``aggregation``. The default architecture is the demo's tiny one.
    """
    feature_dims = {}
    for modality, model_dir in models.items():
        n_states, width = hidden_state_shape(model_dir)
        feature_dims[modality] = (n_layer_groups(n_states, layers, aggregation), width)
    data_config = data_config_for(
        {m: str(p) for m, p in models.items()}, layers=layers, layer_aggregation=aggregation
    )
    return save_random_checkpoint(
        out_dir,
        feature_dims=feature_dims,
        hidden=hidden,
        depth=depth,
        heads=heads,
        n_outputs=N_VERTICES,
        low_rank_head=low_rank_head,
        n_output_timesteps=100,
        data_config=data_config,
        seed=seed,
    )
