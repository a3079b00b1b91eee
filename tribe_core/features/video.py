"""Video features: V-JEPA2 (or another HF video encoder) clips at 2 Hz.

Semantics of neuralset 0.0.2's ``HuggingFaceVideo`` on the reference's
chunked Video events (:func:`tribe_core.features.timing.chunk_bounds`):

- in a chunk of duration ``D`` with ``n = round(D * 2)`` steps, sample ``k``
  ends at ``t_k = linspace(0, D, n + 1)[k + 1]`` and sees ``n_frames`` frames
  at ``max(0, t_k - j * clip_duration / n_frames)``, ``j = n_frames-1 .. 0``
  (clamped at the chunk start);
- the frame shown at time ``t`` (from the file start) is frame
  ``int(fps * t + 1e-5)`` (moviepy's rule); past the last frame, moviepy
  repeats the frame it returned before, i.e. the clip's previous frame;
  frames are decoded by ffmpeg to RGB24 with the same filter chain as
  moviepy (``scale=W:H``, bicubic, ``rgb24``);
- each clip goes through the model's video processor and one forward; the
  hidden states (all layers) are averaged over tokens, then layers are
  selected/grouped; the chunk's ``[L, D, n]`` is placed at its start.

A rotated video (rotation metadata) is decoded upright with its width and
height swapped, as moviepy intends (its parser misses the rotation with some
ffmpeg versions and then squashes the upright frames into the stored size;
we do not reproduce that).

Each frame is decoded once, in order, by one ffmpeg process read ahead by
a thread (decoding overlaps with the model), and goes through the video
processor once (:class:`PixelCache`); only the frames still needed by the
next clips are kept (about ``clip_duration * fps``), so host memory is
bounded whatever the video length. Clips are encoded ``spec.batch_size``
at a time.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from tribe_core.batching import run_with_batch_fallback
from tribe_core.errors import TribeInputError
from tribe_core.features._hf import check_model_layout, load_model, load_preprocessor
from tribe_core.features.layers import aggregate_layers, subselected_indices
from tribe_core.features.spec import FeatureSpec
from tribe_core.features.timing import (
    assemble_blocks,
    chunk_bounds,
    clip_frame_times,
    n_feature_steps,
    timed_array_slices,
)
from tribe_core.features.vjepa2_fused import fused_encoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoStream:
    """Decoding facts of a video's first stream."""

    width: int
    height: int
    fps: float


def ffmpeg_binary() -> str:
    """The ``ffmpeg`` on PATH, else imageio-ffmpeg's bundled one."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        raise TribeInputError("ffmpeg is not installed (needed to read videos)") from exc


def _probe_with_ffmpeg(path: Path) -> dict[str, Any]:
    """Stream facts from ``ffmpeg -i`` (where ffprobe is absent)."""
    proc = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stderr.splitlines():
        if "Stream #" in line and "Video:" in line:
            size = re.search(r" (\d{2,5})x(\d{2,5})[ ,]", line)
            fps = re.search(r"([\d.]+) (?:fps|tbr)", line)
            if size and fps:
                return {
                    "width": int(size.group(1)),
                    "height": int(size.group(2)),
                    "avg_frame_rate": fps.group(1),
                }
    return {}


def probe_video(path: str | Path) -> VideoStream:
    """Width, height and frame rate of the first video stream (ffprobe)."""
    path = Path(path)
    ffprobe = shutil.which("ffprobe")
    info: dict[str, Any] = {}
    err = ""
    if ffprobe is None:
        info = _probe_with_ffmpeg(path)
    else:
        cmd = [
            ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
            "stream=width,height,avg_frame_rate,r_frame_rate:stream_tags=rotate"
            ":stream_side_data=rotation", "-of", "json", str(path),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        err = proc.stderr.strip()[:200]
        if proc.returncode == 0:
            streams = json.loads(proc.stdout or "{}").get("streams", [])
            info = streams[0] if streams else {}
    if not info:
        raise TribeInputError(f"no readable video stream ({err})", path=path)
    fps = 0.0
    for key in ("avg_frame_rate", "r_frame_rate"):
        try:
            fps = float(Fraction(str(info.get(key, "0/0"))))
        except (ZeroDivisionError, ValueError):
            continue
        if fps > 0:
            break
    if fps <= 0 or not info.get("width"):
        raise TribeInputError("video stream has no frame rate or size", path=path)
    width, height = int(info["width"]), int(info["height"])
    if _rotation(info) in (90, 270):  # ffmpeg auto-rotates the frames (and moviepy swaps too)
        width, height = height, width
    return VideoStream(width, height, fps)


def _rotation(info: dict[str, Any]) -> int:
    values = [info.get("tags", {}).get("rotate")]
    values += [d.get("rotation") for d in info.get("side_data_list", []) if isinstance(d, dict)]
    for value in values:
        try:
            return int(round(float(value))) % 360
        except (TypeError, ValueError):
            continue
    return 0


class FrameReader:
    """Sequential RGB24 frames of a video through one ffmpeg process.

    A background thread reads up to ``prefetch`` frames ahead, so decoding
    overlaps with the model. Frames are kept until :meth:`release`; indices
    must not go below what was released.
    """

    def __init__(self, path: str | Path, stream: VideoStream, prefetch: int = 64) -> None:
        self.path, self.stream = Path(path), stream
        ffmpeg = ffmpeg_binary()
        # the filter chain of moviepy's reader, so that pixels are identical
        cmd = [
            ffmpeg, "-nostdin", "-i", str(self.path), "-loglevel", "error", "-f", "image2pipe",
            "-vf", f"scale={stream.width}:{stream.height}", "-sws_flags", "bicubic",
            "-pix_fmt", "rgb24", "-vcodec", "rawvideo", "-",
        ]  # fmt: skip
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._frame_bytes = stream.width * stream.height * 3
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=max(1, prefetch))
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        self._frames: dict[int, np.ndarray] = {}
        self._next = 0
        self._last_index = -1
        self._eof = False
        self.n_past_end = 0  # requested frame indices past the last decodable frame

    def _pump(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            while True:
                raw = stdout.read(self._frame_bytes)
                if len(raw) < self._frame_bytes:
                    break
                frame = np.frombuffer(raw, np.uint8).reshape(
                    self.stream.height, self.stream.width, 3
                )
                self._queue.put(frame)
        except (OSError, ValueError):  # pipe closed by close()
            pass
        finally:
            self._queue.put(None)

    def _read_until(self, index: int) -> None:
        while index >= self._next and not self._eof:
            frame = self._queue.get()
            if frame is None:
                self._eof = True
                break
            self._frames[self._next] = frame
            self._last_index = self._next
            self._next += 1

    def resolve(self, indices: np.ndarray) -> list[int]:
        """Indices of the frames a clip shows (non-decreasing request).

        Past the last frame, moviepy repeats the frame it returned before,
        i.e. the clip's previous frame (the file's last frame if none).
        """
        out: list[int] = []
        for index in indices:
            self._read_until(int(index))
            if int(index) < self._next:
                out.append(int(index))
            elif self._last_index < 0:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise TribeInputError(
                    f"no decodable video frame ({err.strip()[:200]})", path=self.path
                )
            else:
                self.n_past_end += 1
                out.append(out[-1] if out else self._last_index)
        return out

    @property
    def last_index(self) -> int:
        """Index of the last frame decoded so far (-1 before any)."""
        return self._last_index

    def frame(self, index: int) -> np.ndarray:
        """A resolved frame ``[H, W, 3]`` uint8."""
        self._read_until(index)
        if index not in self._frames:
            raise RuntimeError(f"frame {index} was released or does not exist")
        return self._frames[index]

    def clip(self, indices: np.ndarray) -> np.ndarray:
        """Frames ``[n, H, W, 3]`` a clip shows at ``indices`` (see :meth:`resolve`)."""
        return np.stack([self.frame(i) for i in self.resolve(indices)])

    def release(self, below: int) -> None:
        """Forget frames with an index below ``below`` (the last frame is kept)."""
        for i in [i for i in self._frames if i < below and i != self._last_index]:
            del self._frames[i]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        for pipe in (self._proc.stdout, self._proc.stderr):
            if pipe is not None:
                pipe.close()
        self._proc.wait()
        while self._thread.is_alive():  # unblock a pump waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.05)


class PixelCache:
    """Processed frames ``[3, h, w]``, each frame through the processor once.

    The V-JEPA2 processor (resize, centre crop, rescale, normalise) works
    frame by frame, so a clip assembled from cached frames equals the clip
    processed whole; neighbouring 2 Hz clips share most of their frames.
    """

    def __init__(self, reader: FrameReader, processor: Any, device: str = "cpu") -> None:
        self.reader, self.processor, self.device = reader, processor, device
        self._pixels: dict[int, torch.Tensor] = {}

    def clips(self, index_lists: list[np.ndarray]) -> torch.Tensor:
        """Pixel values ``[B, n_frames, 3, h, w]`` of clips given by raw frame indices."""
        resolved = [self.reader.resolve(idx) for idx in index_lists]
        new = sorted({i for r in resolved for i in r} - set(self._pixels))
        if new:
            video = np.stack([self.reader.frame(i) for i in new])
            # on the model's device: resizing full-resolution frames is the CPU's heaviest job
            pixels = self.processor(videos=[video], return_tensors="pt", device=self.device)[
                "pixel_values_videos"
            ][0]
            self._pixels.update(zip(new, pixels, strict=True))
        return torch.stack([torch.stack([self._pixels[i] for i in r]) for r in resolved])

    def release(self, below: int) -> None:
        """Forget frames (raw and processed) with an index below ``below``."""
        for i in [i for i in self._pixels if i < below]:
            del self._pixels[i]
        self.reader.release(below)


def load_video_model(spec: FeatureSpec) -> tuple[torch.nn.Module, Any]:
    """Model and video processor (``do_rescale=True``, as the reference)."""
    check_model_layout(spec)  # from the config, before loading any weight
    processor = load_preprocessor(spec, "video_processor", do_rescale=True)
    model = load_model(spec)
    return model, processor


def clip_schedule(
    duration_s: float, fps: float, spec: FeatureSpec
) -> Iterator[tuple[float, int, np.ndarray]]:
    """Yield ``(chunk_start_s, k, frame_indices [n_frames])`` for every 2 Hz sample."""
    for start, duration in chunk_bounds(duration_s, spec.chunk_max_s, spec.chunk_min_s):
        for k, times in clip_frame_times(
            duration, spec.frequency_hz, spec.clip_duration_s, spec.n_frames
        ):
            yield start, k, np.array([int(fps * (t + start) + 0.00001) for t in times])


@torch.no_grad()
def _encode_clips(model: torch.nn.Module, pixels: torch.Tensor, spec: FeatureSpec) -> np.ndarray:
    """Layer groups ``[B, L, D]`` of processed clips ``[B, n_frames, 3, h, w]``.

    A V-JEPA2 model goes through :mod:`tribe_core.features.vjepa2_fused`
    (same maths, fused kernels) unless ``features.fused`` says ``off`` or the
    model or device is not one it supports.
    """
    pixels = pixels.to(spec.device, dtype=cast(torch.dtype, model.dtype))
    fused = fused_encoder(model, spec.fused)
    if fused is not None:
        means = fused.state_means(pixels)  # [N_states, B, D], token means of every state
        tokens_mean = means[subselected_indices(len(means), spec.layer_subselection)]
    else:
        kwargs: dict[str, Any] = {"output_hidden_states": True}
        if type(model).__name__ == "VJEPA2Model":
            kwargs["skip_predictor"] = True  # the encoder's states only
        states = model(pixel_values_videos=pixels, **kwargs).hidden_states
        keep = subselected_indices(len(states), spec.layer_subselection)
        tokens_mean = torch.stack([states[i].float().mean(dim=1) for i in keep])  # [L', B, D]
    groups = aggregate_layers(tokens_mean, spec.layers, spec.layer_aggregation)  # [L, B, D]
    return groups.transpose(0, 1).cpu().numpy()


def _check_duration(video_path: str | Path, spec: FeatureSpec, duration_s: float) -> None:
    if round(duration_s * spec.frequency_hz) < 1:
        raise TribeInputError(
            f"video lasts {duration_s:.3f} s, shorter than one feature sample "
            f"({0.5 / spec.frequency_hz:.3f} s at {spec.frequency_hz} Hz)",
            path=video_path,
        )


def iter_video_feature_blocks(
    video_path: str | Path,
    spec: FeatureSpec,
    duration_s: float,
    model: tuple[torch.nn.Module, Any] | None = None,
    chunks: Sequence[int] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_step, features [L, D, n])`` chunk by chunk, in time order.

    Blocks are disjoint and already cut to the stimulus grid of
    ``n_feature_steps(duration_s)`` steps, so a caller can write them to a
    store as they come (host memory stays at one chunk). ``chunks`` selects
    chunk indices of ``chunk_bounds(...)`` (a time shard, see
    :func:`tribe_core.features.timing.shard_chunks`); ``None`` is all.
    """
    _check_duration(video_path, spec, duration_s)
    bounds = chunk_bounds(duration_s, spec.chunk_max_s, spec.chunk_min_s)
    wanted = set(range(len(bounds)) if chunks is None else chunks)
    starts = {bounds[c][0]: c for c in wanted}
    stream = probe_video(video_path)
    net, processor = model if model is not None else load_video_model(spec)
    schedule = [s for s in clip_schedule(duration_s, stream.fps, spec) if s[0] in starts]
    if (fused := fused_encoder(net, spec.fused)) is not None:
        fused.plan(len(schedule))  # compile the fused V-JEPA2 blocks only for long videos
    n_steps = n_feature_steps(duration_s, spec.frequency_hz)
    reader = FrameReader(video_path, stream)
    cache = PixelCache(reader, processor, spec.device)
    current: tuple[float, np.ndarray] | None = None

    def finish(start: float, data: np.ndarray) -> tuple[int, np.ndarray] | None:
        slices = timed_array_slices(n_steps, spec.frequency_hz, data.shape[-1], start)
        if slices is None:
            return None
        return slices[0].start, np.ascontiguousarray(data[..., slices[1]])

    try:
        for i in range(0, len(schedule), spec.batch_size):
            part = schedule[i : i + spec.batch_size]
            pixels = cache.clips([idx for _, _, idx in part])
            if i + spec.batch_size < len(schedule):
                cache.release(int(schedule[i + spec.batch_size][2].min()))
            # Out of GPU memory: halve the clip batch (with a warning) instead of failing.
            # The lambda runs before the loop moves on, so it sees this batch's pixels.
            vectors = np.concatenate(
                run_with_batch_fallback(
                    lambda a, b: _encode_clips(net, pixels[a:b], spec),  # noqa: B023
                    len(part), len(part), logger=log, what="video clips",
                )
            )  # fmt: skip
            for (start, k, _), vec in zip(part, vectors, strict=True):
                if current is None or current[0] != start:
                    if current is not None and (block := finish(*current)) is not None:
                        yield block
                    n = n_feature_steps(bounds[starts[start]][1], spec.frequency_hz)
                    current = (start, np.zeros((*vec.shape, n), np.float32))
                current[1][..., k] = vec
        if current is not None and (block := finish(*current)) is not None:
            yield block
        past_end_s = reader.n_past_end / spec.n_frames / spec.frequency_hz
        if past_end_s > 1.0:
            log.warning(
                "%s: about %.1f s of samples lie past the last decodable frame (frame %d at "
                "%.2f fps); they repeat that frame, as the reference does. Truncated file, or "
                "media duration longer than the video stream?",
                video_path, past_end_s, reader.last_index, stream.fps,
            )  # fmt: skip
    finally:
        reader.close()


def extract_video_features(
    video_path: str | Path,
    spec: FeatureSpec,
    duration_s: float,
    model: tuple[torch.nn.Module, Any] | None = None,
    chunks: Sequence[int] | None = None,
) -> np.ndarray:
    """Video features ``[L, D, T]`` (float32, ``T = n_feature_steps(duration_s)``).

    Parameters
    ----------
    video_path
        The stimulus video.
    spec
        Video feature settings (clip duration, frames per clip, ...).
    duration_s
        Stimulus duration, which sets the sample times and number of steps.
    model
        Optional preloaded ``(model, processor)`` from :func:`load_video_model`.
    chunks
        Only these chunks (a time shard); other steps stay zero, so the sum
        of the shards' outputs is the unsharded output.

    Raises
    ------
    TribeInputError
        The video is shorter than one sample, or no frame can be decoded.
    """
    _check_duration(video_path, spec, duration_s)
    blocks = iter_video_feature_blocks(video_path, spec, duration_s, model, chunks)
    grid = assemble_blocks(blocks, n_feature_steps(duration_s, spec.frequency_hz))
    if grid is None:
        raise TribeInputError("no video sample could be encoded", path=video_path)
    return grid
