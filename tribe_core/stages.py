"""One function per workflow stage, from input paths to output paths.

``workflow_scripts/*.py`` call exactly one of these; they hold no logic. Each
function takes plain paths and values (never Snakemake objects), so a stage can
be run and tested without Snakemake.

This module is the stages' one front door. Each function lives in the stage
module of its rules file (``rules/media.smk`` -> :mod:`tribe_core.media.stages`;
likewise ``events``, ``features``, ``encoder`` and ``products``) and is imported
on first use (:mod:`tribe_core.lazy`), so a job loads only its own stage's
dependencies: a media job never imports torch.
"""

from typing import TYPE_CHECKING

from tribe_core.lazy import lazy_exports

__all__ = [
    "PredictSettings",
    "checkpoint_meta",
    "run_annotate_words",
    "run_contributions",
    "run_evaluate",
    "run_extract_audio",
    "run_extract_features",
    "run_extract_video_shard",
    "run_merge_video_shards",
    "run_plots",
    "run_predict",
    "run_report",
    "run_roi_table",
    "run_synthesize_speech",
    "run_transcribe",
    "run_volumes",
]

if TYPE_CHECKING:
    from tribe_core.encoder.load import checkpoint_meta
    from tribe_core.encoder.stages import PredictSettings, run_predict
    from tribe_core.events.stages import run_annotate_words, run_transcribe
    from tribe_core.features.stages import (
        run_extract_features,
        run_extract_video_shard,
        run_merge_video_shards,
    )
    from tribe_core.media.stages import run_extract_audio, run_synthesize_speech
    from tribe_core.products.stages import (
        run_contributions,
        run_evaluate,
        run_plots,
        run_report,
        run_roi_table,
        run_volumes,
    )

__getattr__, __dir__ = lazy_exports(__name__)
