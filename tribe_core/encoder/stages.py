"""Stage 4 (``rules/encoder.smk``): segmented encoder inference over a whole stimulus.

:class:`PredictSettings` is the config's ``checkpoint`` and ``predict`` section, built
once by the rules (the schema fills in every default) and taken by the predict and
contributions stages, as :class:`~tribe_core.features.FeatureSpec` is by the feature
stages. :func:`stimulus_predictor` loads a stimulus' media facts, feature stores and
the encoder once, and predicts any variant of its features. One function per rule,
from input paths to output paths (see :mod:`tribe_core.stages`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tribe_core.encoder.load import load_encoder
from tribe_core.events.annotate import read_events_tsv
from tribe_core.io.zarr_store import open_feature_array
from tribe_core.media.probe import MediaInfo
from tribe_core.segments import PredictionResult, open_predictions_store, predict_stimulus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictSettings:
    """Encoder inference settings of a run (config ``checkpoint`` and ``predict.*``).

    Attributes
    ----------
    checkpoint
        TRIBE v2 model directory or hub id.
    device
        Torch device of the encoder.
    precision
        ``"fp32"`` (exact), ``"tf32"``, ``"fp16"`` or ``"bf16"``.
    batch_size
        Segments per forward.
    duration_trs, overlap_trs
        Segment length and overlap in TRs.
    compile
        ``torch.compile`` the encoder.
    """

    checkpoint: str
    device: str
    precision: str
    batch_size: int
    duration_trs: int
    overlap_trs: int
    compile: bool


def stimulus_predictor(
    feature_stores: Mapping[str, str | Path],
    events: str | Path,
    media: str | Path,
    settings: PredictSettings,
    *,
    stimulus: str | None = None,
) -> tuple[MediaInfo, dict[str, Any], Callable[..., PredictionResult]]:
    """Load a stimulus' media facts, feature stores and the encoder, once.

    Returns ``(media info, features, predict)`` where ``predict(features)`` runs
    :func:`tribe_core.segments.predict_stimulus` on any variant of the features
    (e.g. with a modality removed; ``allow_all_absent=True`` lets every one be)
    and returns its ``PredictionResult``. The features are lazy Zarr arrays: each
    segment batch reads only its steps.
    """
    info = MediaInfo.read(media)
    table = read_events_tsv(Path(events))
    features = {m: open_feature_array(p)[0] for m, p in feature_stores.items()}
    encoder = load_encoder(settings.checkpoint, device=settings.device)

    def predict(
        feats: dict[str, Any], allocate: Any = None, allow_all_absent: bool = False
    ) -> PredictionResult:
        return predict_stimulus(
            encoder, feats, table,
            duration_trs=settings.duration_trs, overlap_trs=settings.overlap_trs,
            batch_size=settings.batch_size, precision=settings.precision,
            device=settings.device, duration_s=info.duration_s, stimulus=stimulus,
            compile=settings.compile, allocate=allocate, allow_all_absent=allow_all_absent,
        )  # fmt: skip

    return info, features, predict


def run_predict(
    feature_stores: Mapping[str, str | Path],
    events: str | Path,
    media: str | Path,
    predictions_out: str | Path,
    settings: PredictSettings,
    *,
    stimulus: str | None = None,
) -> None:
    """Stage 4: segmented encoder inference over the whole stimulus.

    Rows go to ``predictions.zarr`` batch by batch (memory: one batch of segments).
    """
    info, features, predict = stimulus_predictor(
        feature_stores, events, media, settings, stimulus=stimulus
    )
    attrs = {
        "stimulus": stimulus,
        "checkpoint": settings.checkpoint,
        "precision": settings.precision,
        "duration_trs": settings.duration_trs,
        "overlap_trs": settings.overlap_trs,
        "duration_s": info.duration_s,
        "modalities_present": [m for m, f in features.items() if f is not None],
    }
    with open_predictions_store(predictions_out) as store:
        result = predict(features, allocate=store.allocate)
        store.finish(result, attrs)
    log.info("predictions of %s: %s", stimulus, result.predictions.shape)
