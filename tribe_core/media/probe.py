"""What a media file holds: duration, audio and video streams (ffprobe)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from tribe_core.errors import TribeInputError
from tribe_core.media.kinds import stimulus_kind


@dataclass(frozen=True)
class MediaInfo:
    """One stimulus as the workflow sees it (``media.json``).

    Attributes
    ----------
    kind
        ``"video"``, ``"audio"`` or ``"text"``.
    source
        The stimulus file the information was read from.
    duration_s
        Duration of the media in seconds (of the synthesised speech for text).
    has_audio, has_video
        Whether an audio / a video stream is present (cover art is not video).
    fps
        Average frame rate of the video stream, ``None`` without video.
    """

    kind: str
    source: str
    duration_s: float
    has_audio: bool
    has_video: bool
    fps: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaInfo:
        """Build from :meth:`to_dict` output (unknown keys are an error)."""
        fps = data.get("fps")
        return cls(
            kind=str(data["kind"]),
            source=str(data["source"]),
            duration_s=float(data["duration_s"]),
            has_audio=bool(data["has_audio"]),
            has_video=bool(data["has_video"]),
            fps=None if fps is None else float(fps),
        )

    def to_json(self) -> str:
        """Serialise to a JSON string (``media.json``)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> MediaInfo:
        """Parse a JSON string written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def write(self, path: str | Path) -> None:
        """Write ``media.json`` atomically."""
        from tribe_core.io.atomic import write_text_atomic

        write_text_atomic(path, self.to_json())

    @classmethod
    def read(cls, path: str | Path) -> MediaInfo:
        """Read ``media.json``."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def ffmpeg_reason(error: ffmpeg.Error) -> str:
    """Last meaningful line of ffmpeg's stderr (its reason for failing)."""
    stderr = (error.stderr or b"").decode("utf-8", errors="replace")
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith(("Press [q]", "Conversion failed")):
            return line
    return "ffmpeg failed without a message"


def ffmpeg_name(path: Path) -> str:
    """Absolute path as ffmpeg reads it (``file:`` stops protocol parsing of ``a:b``)."""
    return "file:" + str(path.resolve())


def _frame_rate(stream: dict[str, Any]) -> float | None:
    for key in ("avg_frame_rate", "r_frame_rate"):
        value = stream.get(key)
        if value and value not in ("0/0", "0"):
            rate = float(Fraction(value))
            if rate > 0:
                return rate
    return None


def _duration(info: dict[str, Any], streams: list[dict[str, Any]]) -> float:
    candidates = [info.get("format", {}).get("duration")]
    candidates += [s.get("duration") for s in streams]
    for value in candidates:
        try:
            duration = float(value)
        except (TypeError, ValueError):
            continue
        if duration > 0:
            return duration
    return 0.0


def probe_media(path: str | Path) -> MediaInfo:
    """Describe a stimulus file with ffprobe.

    Parameters
    ----------
    path
        Video, audio or text stimulus (see :data:`tribe_core.media.SUFFIXES`).
        A text file is described with ``duration_s = 0`` and no streams; its
        speech is made by :func:`tribe_core.media.synthesize_speech`.

    Returns
    -------
    MediaInfo

    Raises
    ------
    TribeInputError
        Missing file, unsupported suffix, or a file ffprobe cannot read (the
        message carries ffprobe's reason).
    """
    path = Path(path)
    kind = stimulus_kind(path)
    if not path.is_file():
        raise TribeInputError("file not found", path=path, stimulus=path.stem)
    if kind == "text":
        return MediaInfo("text", str(path), 0.0, has_audio=False, has_video=False, fps=None)
    try:
        info = ffmpeg.probe(ffmpeg_name(path))
    except ffmpeg.Error as error:
        raise TribeInputError(
            f"ffprobe cannot read this media: {ffmpeg_reason(error)}",
            path=path,
            stimulus=path.stem,
        ) from None
    streams = info.get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    video = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic", 0)
    ]
    if not audio and not video:
        raise TribeInputError(
            "no audio or video stream found; is this really a media file?",
            path=path,
            stimulus=path.stem,
        )
    return MediaInfo(
        kind=kind,
        source=str(path),
        duration_s=_duration(info, video + audio),
        has_audio=bool(audio),
        has_video=bool(video),
        fps=_frame_rate(video[0]) if video else None,
    )
