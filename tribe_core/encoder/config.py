"""Read a TRIBE v2 ``config.yaml`` safely and derive the encoder architecture from it.

The released ``config.yaml`` is a ``yaml.dump`` of the training experiment: it holds
``!!python/tuple`` and ``!!python/object/apply:pathlib.PosixPath`` tags, which the
reference reads with an unsafe loader. We read it with a ``SafeLoader`` that knows
exactly those two tags and refuses every other ``python/`` tag (``os.system``, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from tribe_core.errors import TribeConfigError

_PY = "tag:yaml.org,2002:python/"
TUPLE_TAG = _PY + "tuple"
POSIX_PATH_TAG = _PY + "object/apply:pathlib.PosixPath"


class _ConfigLoader(yaml.SafeLoader):
    """Safe loader plus the two python tags a released config uses."""


def _construct_tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[Any, ...]:
    return tuple(loader.construct_sequence(node, deep=True))  # type: ignore[arg-type]


def _construct_posix_path(loader: yaml.SafeLoader, node: yaml.Node) -> PurePosixPath:
    # PurePosixPath, not PosixPath: it can be built on any OS and does no I/O.
    parts = loader.construct_sequence(node, deep=True)  # type: ignore[arg-type]
    if not all(isinstance(p, str) for p in parts):
        raise yaml.constructor.ConstructorError(
            None, None, f"PosixPath arguments must be strings, got {parts!r}", node.start_mark
        )
    return PurePosixPath(*parts)


def _refuse_python_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"refusing python tag '!!python/{suffix}': only !!python/tuple and "
        "!!python/object/apply:pathlib.PosixPath are allowed in a checkpoint config",
        node.start_mark,
    )


_ConfigLoader.add_constructor(TUPLE_TAG, _construct_tuple)
_ConfigLoader.add_constructor(POSIX_PATH_TAG, _construct_posix_path)
_ConfigLoader.add_multi_constructor(_PY, _refuse_python_tag)


class _ConfigDumper(yaml.Dumper):
    """Dumper writing tuples and paths with the same tags as the released config."""


def _represent_path(dumper: yaml.Dumper, data: PurePosixPath) -> yaml.Node:
    return dumper.represent_sequence(POSIX_PATH_TAG, list(data.parts))


_ConfigDumper.add_multi_representer(PurePosixPath, _represent_path)


def load_config_yaml(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint's ``config.yaml`` with a safe loader.

    Parameters
    ----------
    path
        The ``config.yaml`` file.

    Returns
    -------
    dict
        The parsed config; ``!!python/tuple`` becomes ``tuple`` and
        ``!!python/object/apply:pathlib.PosixPath`` a ``pathlib.PurePosixPath``.

    Raises
    ------
    TribeConfigError
        The file is missing, is not YAML, is not a mapping, or uses any other
        python tag.
    """
    path = Path(path)
    if not path.is_file():
        raise TribeConfigError(f"checkpoint config {str(path)!r} does not exist")
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_ConfigLoader)  # noqa: S506 - safe subclass
    except yaml.YAMLError as exc:
        raise TribeConfigError(f"checkpoint config {str(path)!r} is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise TribeConfigError(
            f"checkpoint config {str(path)!r} must be a mapping, got {type(data).__name__}"
        )
    return data


def dump_config_yaml(config: Mapping[str, Any], path: str | Path) -> None:
    """Write ``config`` like the released file (tuples and paths as python tags)."""
    text = yaml.dump(dict(config), Dumper=_ConfigDumper, sort_keys=False)
    Path(path).write_text(text, encoding="utf-8")


@dataclasses.dataclass(frozen=True)
class EncoderArchitecture:
    """Everything needed to build :class:`~tribe_core.encoder.model.TribeEncoder`.

    Built from ``config.yaml``'s ``brain_model_config`` and the checkpoint's
    ``model_build_args``; the subject layer is always in average-subject mode.
    """

    feature_dims: dict[str, tuple[int, int]]
    n_outputs: int
    n_output_timesteps: int
    hidden: int
    depth: int
    heads: int
    ff_mult: int
    max_seq_len: int
    low_rank_head: int | None
    time_pos_embedding: bool
    subject_bias: bool

    @property
    def dim_head(self) -> int:
        return self.hidden // self.heads

    @property
    def rotary_dim(self) -> int:
        # x_transformers: max(dim_head // 2, 32) channels of each head are rotated.
        return max(self.dim_head // 2, 32)

    @property
    def modality_hidden(self) -> int:
        return self.hidden // len(self.feature_dims)


# Options the plain-PyTorch encoder implements, with the only values it supports.
_ENCODER_FIXED = {
    "cross_attend": False,
    "causal": False,
    "use_scalenorm": True,
    "use_rmsnorm": False,
    "rel_pos_bias": False,
    "alibi_pos_bias": False,
    "rotary_pos_emb": True,
    "rotary_xpos": False,
    "residual_attn": False,
    "scale_residual": True,
}
_MODEL_FIXED = {
    "combiner": None,
    "subject_embedding": False,
    "extractor_aggregation": "cat",
    "layer_aggregation": "cat",
    "linear_baseline": False,
    "temporal_smoothing": None,
}


def _feature_dims(raw: Any) -> dict[str, tuple[int, int]]:
    if not isinstance(raw, Mapping) or not raw:
        raise TribeConfigError(f"model_build_args.feature_dims must be a mapping, got {raw!r}")
    dims: dict[str, tuple[int, int]] = {}
    for name, value in raw.items():
        if value is None or len(value) != 2:
            raise TribeConfigError(
                f"model_build_args.feature_dims[{name!r}] must be (n_layers, dim), got {value!r}"
            )
        dims[str(name)] = (int(value[0]), int(value[1]))
    return dims


def architecture_from_config(
    config: Mapping[str, Any], build_args: Mapping[str, Any], source: str = "checkpoint"
) -> EncoderArchitecture:
    """Derive the encoder architecture; refuse options this implementation lacks.

    Parameters
    ----------
    config
        Parsed ``config.yaml`` (needs ``brain_model_config``).
    build_args
        The checkpoint's ``model_build_args`` (``feature_dims``, ``n_outputs``,
        ``n_output_timesteps``).
    source
        Named in error messages.
    """
    model = config.get("brain_model_config")
    if not isinstance(model, Mapping):
        raise TribeConfigError(f"{source}: config.yaml has no 'brain_model_config' mapping")
    encoder = model.get("encoder") or {}
    problems = []
    for key, want in _MODEL_FIXED.items():
        if key in model and model[key] != want:
            problems.append(f"brain_model_config.{key}={model[key]!r} (supported: {want!r})")
    for key, want in _ENCODER_FIXED.items():
        if key in encoder and encoder[key] != want:
            problems.append(
                f"brain_model_config.encoder.{key}={encoder[key]!r} (supported: {want!r})"
            )
    projector = model.get("projector") or {}
    if projector.get("hidden_sizes"):
        problems.append("brain_model_config.projector.hidden_sizes must be empty (plain Linear)")
    subject = model.get("subject_layers") or {}
    if not subject.get("subject_dropout"):
        # Average-subject mode uses the extra "dropout subject" row, which only
        # exists when the model was trained with subject dropout.
        problems.append("brain_model_config.subject_layers.subject_dropout must be set")
    if problems:
        raise TribeConfigError(f"{source}: unsupported architecture: " + "; ".join(problems))
    try:
        feature_dims = _feature_dims(build_args["feature_dims"])
        arch = EncoderArchitecture(
            feature_dims=feature_dims,
            n_outputs=int(build_args["n_outputs"]),
            n_output_timesteps=int(build_args["n_output_timesteps"]),
            hidden=int(model["hidden"]),
            depth=int(encoder.get("depth", 12)),
            heads=int(encoder.get("heads", 8)),
            ff_mult=int(encoder.get("ff_mult", 4)),
            max_seq_len=int(model.get("max_seq_len", 1024)),
            low_rank_head=(
                None if model.get("low_rank_head") is None else int(model["low_rank_head"])
            ),
            time_pos_embedding=bool(model.get("time_pos_embedding", True)),
            subject_bias=bool(subject.get("bias", True)),
        )
    except KeyError as exc:
        raise TribeConfigError(f"{source}: missing {exc.args[0]!r} in config/build args") from exc
    if arch.hidden % len(feature_dims) or arch.hidden % arch.heads:
        raise TribeConfigError(
            f"{source}: hidden={arch.hidden} must be divisible by the number of modalities "
            f"({len(feature_dims)}) and by heads ({arch.heads})"
        )
    if arch.dim_head < 32:
        # x_transformers rotates max(dim_head // 2, 32) channels per head; with fewer
        # than 32 channels the reference fails (neuraltrain refuses it at build time).
        raise TribeConfigError(
            f"{source}: hidden={arch.hidden} / heads={arch.heads} gives dim_head="
            f"{arch.dim_head} < 32, which the reference's rotary embedding cannot handle; "
            "use fewer heads or a larger hidden (e.g. hidden=48 with heads=1, or hidden=96)"
        )
    return arch
