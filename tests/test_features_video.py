"""Video features on a tiny random V-JEPA2, equal to neuralset 0.0.2's HuggingFaceVideo."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tribe_core.demo_models.video import build_tiny_vjepa2
from tribe_core.errors import TribeInputError
from tribe_core.features import FeatureSpec, extract_video_features
from tribe_core.features.timing import chunk_bounds, shard_chunks
from tribe_core.features.video import FrameReader, clip_schedule, probe_video


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # the oracle dispatches on "vjepa2" in the model path (and refuses "video" in it)
    return build_tiny_vjepa2(tmp_path_factory.mktemp("models") / "tiny-vjepa2")


def _make_video(path: Path, source: str, fps: int | str, duration_s: float) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"{source}=size=64x48:rate={fps}",
            "-t",
            str(duration_s),
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stim")
    return {
        "16fps": _make_video(root / "a16.mp4", "testsrc", 16, 2.5),
        # 25 fps, 2.3 s: frame times fall between frames and past the last frame
        "25fps": _make_video(root / "b25.mp4", "testsrc2", 25, 2.3),
        "30fps": _make_video(root / "c30.mp4", "testsrc2", 30, 3.0),
        "29.97fps": _make_video(root / "d2997.mp4", "testsrc2", "30000/1001", 1.6),
    }


def _reference(
    model: Path, video: Path, spec: FeatureSpec, chunk: tuple[float, float] | None
) -> tuple[np.ndarray, float]:
    base = pytest.importorskip("neuralset.extractors.base")
    video_mod = pytest.importorskip("neuralset.extractors.video")
    image_mod = pytest.importorskip("neuralset.extractors.image")
    utils = pytest.importorskip("neuralset.events.utils")
    transforms = pytest.importorskip("neuralset.events.transforms")
    pytest.importorskip("moviepy")
    base.HuggingFaceMixin.repo_exists = lambda self: True  # local model, offline
    image = image_mod.HuggingFaceImage(
        model_name=str(model),
        layers=list(spec.layers),
        layer_aggregation=spec.layer_aggregation,
        device="cpu",
        infra={"keep_in_ram": False},
    )
    extractor = video_mod.HuggingFaceVideo(
        image=image, frequency=2.0, clip_duration=spec.clip_duration_s, aggregation="sum"
    )
    events = utils.standardize_events(
        pd.DataFrame(
            [
                {
                    "type": "Video",
                    "filepath": str(video),
                    "start": 0.0,
                    "timeline": "t",
                    "subject": "s",
                }
            ]
        )
    )
    duration = float(events.duration.iloc[0])  # moviepy's container duration, as the reference
    if chunk is not None:
        events = transforms.ChunkEvents(
            event_type_to_chunk="Video", max_duration=chunk[0], min_duration=chunk[1]
        )(events)
        assert len(events) > 1
    return extractor(events, start=0.0, duration=duration).numpy(), duration


@pytest.mark.parametrize(
    ("name", "chunk"), [("16fps", None), ("25fps", None), ("29.97fps", None), ("30fps", (1.5, 1.0))]
)
def test_equals_neuralset(model: Path, clips: dict[str, Path], name: str, chunk) -> None:  # noqa: ANN001
    spec = FeatureSpec("video", str(model), batch_size=3)
    if chunk is not None:  # short chunks: the clip history is clamped at each chunk start
        spec = dataclasses.replace(spec, chunk_max_s=chunk[0], chunk_min_s=chunk[1])
    ref, duration = _reference(model, clips[name], spec, chunk)
    ours = extract_video_features(clips[name], spec, duration)
    assert ours.shape == ref.shape == (2, 32, round(duration * 2))
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_frames_decoded_once_in_order(clips: dict[str, Path]) -> None:
    video = clips["25fps"]
    stream = probe_video(video)
    assert (stream.width, stream.height, stream.fps) == (64, 48, 25.0)
    spec = FeatureSpec("video", "unused")
    # ask for 2.5 s: the file holds 58 frames (2.32 s), the last clip runs past its end
    schedule = list(clip_schedule(2.5, stream.fps, spec))
    assert len(schedule) == 5 and all(len(idx) == 64 for _, _, idx in schedule)
    # the clip of sample k ends at its time and starts 63/64 * 4 s earlier, clamped at 0
    assert schedule[-1][2][-1] == 62 and schedule[-1][2][0] == 0
    reader = FrameReader(video, stream)
    try:
        frames = [reader.clip(idx) for _, _, idx in schedule]
        assert reader._next == 58  # every frame decoded once, in order
    finally:
        reader.close()
    assert frames[0].shape == (64, 48, 64, 3) and frames[0].dtype == np.uint8
    last = schedule[-1][2]
    inside = int(np.sum(last <= 57))
    # past the last frame, moviepy repeats the frame it returned before
    assert 0 < inside < 64
    for j in range(inside, 64):
        np.testing.assert_array_equal(frames[-1][j], frames[-1][inside - 1])
    assert not np.array_equal(frames[-1][inside - 1], frames[-1][0])


def test_batch_size_does_not_change_values(model: Path, clips: dict[str, Path]) -> None:
    spec = FeatureSpec("video", str(model), batch_size=1)
    one = extract_video_features(clips["16fps"], spec, 2.5)
    four = extract_video_features(clips["16fps"], dataclasses.replace(spec, batch_size=4), 2.5)
    np.testing.assert_allclose(one, four, rtol=1e-4, atol=1e-5)


def test_time_shards_merge_to_unsharded(model: Path, clips: dict[str, Path]) -> None:
    spec = FeatureSpec("video", str(model), chunk_max_s=1.0, chunk_min_s=0.5, batch_size=2)
    whole = extract_video_features(clips["16fps"], spec, 2.5)
    assert chunk_bounds(2.5, 1.0, 0.5) == [(0.0, 1.0), (1.0, 1.0), (2.0, 0.5)]
    shards = shard_chunks(3, 2)
    assert shards == [[0, 1], [2]]
    parts = [extract_video_features(clips["16fps"], spec, 2.5, chunks=c) for c in shards]
    np.testing.assert_array_equal(parts[0][..., :4], whole[..., :4])
    assert np.all(parts[0][..., 4:] == 0) and np.all(parts[1][..., :4] == 0)
    np.testing.assert_array_equal(parts[0] + parts[1], whole)


def test_rotated_video_is_upright(clips: dict[str, Path], tmp_path: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(clips["25fps"]), "-c", "copy",
         "-metadata:s:v:0", "rotate=90", str(rotated)],
        check=True,
    )  # fmt: skip
    stream = probe_video(rotated)
    assert (stream.width, stream.height) == (48, 64)
    frames = []
    for path, info in [(clips["25fps"], probe_video(clips["25fps"])), (rotated, stream)]:
        reader = FrameReader(path, info)
        try:
            frames.append(reader.clip(np.array([10]))[0].astype(int))
        finally:
            reader.close()
    assert frames[1].shape == (64, 48, 3)
    errors = [np.abs(np.rot90(frames[0], k) - frames[1]).mean() for k in (1, 3)]
    assert min(errors) < 4 < max(errors)


def test_truncated_video_repeats_its_last_frame_and_warns(
    model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = tmp_path / "full.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=16",
         "-t", "6", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-g", "8", "-movflags", "+faststart",
         str(full)],
        check=True,
    )  # fmt: skip
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 3])  # the index says 6 s, the data stop early
    spec = FeatureSpec("video", str(model), batch_size=4)
    with caplog.at_level("WARNING", logger="tribe_core.features.video"):
        out = extract_video_features(cut, spec, 6.0)
    assert out.shape == (2, 32, 12) and np.isfinite(out).all()
    assert "past the last decodable frame" in caplog.text
    assert np.all(np.abs(out).sum(axis=(0, 1)) > 0)  # every step has features


def test_bad_videos(model: Path, clips: dict[str, Path], tmp_path: Path) -> None:
    spec = FeatureSpec("video", str(model))
    with pytest.raises(TribeInputError, match="shorter than one feature sample"):
        extract_video_features(clips["16fps"], spec, 0.2)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    with pytest.raises(TribeInputError, match="broken.mp4"):
        extract_video_features(broken, spec, 2.0)


def test_out_of_memory_halves_the_clip_batch(
    model: Path,
    clips: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A clip batch that does not fit is retried in halves, with a warning, same values."""
    import tribe_core.features.video as video

    spec = FeatureSpec("video", str(model), batch_size=4)
    whole = extract_video_features(clips["16fps"], spec, 2.5)
    encode = video._encode_clips

    def small_gpu(net, pixels, spec):  # noqa: ANN001, ANN202
        # Fault injection: this "device" holds at most 2 clips at a time.
        if pixels.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return encode(net, pixels, spec)

    monkeypatch.setattr(video, "_encode_clips", small_gpu)
    with caplog.at_level("WARNING"):
        halved = extract_video_features(clips["16fps"], spec, 2.5)
    assert any("out of memory" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(halved, whole, rtol=1e-4, atol=1e-5)
