"""Word times and TR counts on long media (marker ``slow``; issue: long media).

The reference shifts the words of every transcription chunk after the first by
twice the chunk's offset; ours must stay where the speech is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.workflow_helpers import make_workdir, snakemake

pytestmark = pytest.mark.slow

SENTENCES = [
    "The river bends around the quiet town.",
    "Children walk to school along the bank.",
    "A baker opens his shop before dawn.",
    "Clouds gather over the distant hills.",
    "The old bridge creaks under the carts.",
]


def _long_text(min_words: int = 420) -> str:
    words, lines = 0, []
    while words < min_words:
        sentence = SENTENCES[len(lines) % len(SENTENCES)]
        lines.append(sentence)
        words += len(sentence.split())
    return " ".join(lines) + "\n"


def test_long_speech_times_and_tr_count(tmp_path: Path, demo_models: Path) -> None:
    """>= 3 min of speech as a .txt stimulus and as a WAV with a .words.tsv sidecar."""
    from tribe_core.media import synthesize_speech
    from tribe_core.segments import read_predictions

    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    (stimuli / "long_text.txt").write_text(_long_text(), encoding="utf-8")
    # The same speech as an audio stimulus with a sidecar of its known word times.
    info, transcript = synthesize_speech(stimuli / "long_text.txt", stimuli / "long_audio.wav")
    assert info.duration_s >= 180
    known = [w for seg in transcript["segments"] for w in seg["words"]]
    pd.DataFrame(
        {
            "word": [w["word"] for w in known],
            "start": [w["start"] for w in known],
            "duration": [w["end"] - w["start"] for w in known],
        }
    ).to_csv(stimuli / "long_audio.words.tsv", sep="\t", index=False)

    work = make_workdir(tmp_path / "work", demo_models, stimuli)
    snakemake(
        work, "--cores", "2",
        "results/long_text/predictions.zarr", "results/long_audio/predictions.zarr",
    )  # fmt: skip
    known_starts = np.array([w["start"] for w in known])
    for name in ("long_text", "long_audio"):
        base = work / "results" / name
        events = pd.read_csv(base / "events.tsv", sep="\t", keep_default_na=False)
        words = events[events["type"] == "Word"]
        assert len(words) == len(known), name
        np.testing.assert_allclose(words["start"].to_numpy(), known_starts, atol=0.25)
        media = json.loads((base / "media.json").read_text())
        result = read_predictions(base / "predictions.zarr")
        # The TR table has one row per stimulus TR; those starting before the
        # stimulus' end are on its timeline, and all of them carry an event.
        on_timeline = result.trs["tr_start_s"] < media["duration_s"]
        assert abs(int(on_timeline.sum()) - media["duration_s"]) <= 1, (name, media)
        n_kept = int(result.trs["kept"].sum())
        assert abs(n_kept - media["duration_s"]) <= 1, (name, n_kept, media)
        assert result.predictions.shape == (n_kept, 20484)
