"""Bring-your-own transcript: sidecar files next to a stimulus skip the recogniser.

Looked up next to ``movie.mp4``, in this order:

- ``movie.TextGrid`` (Praat, long or short text format, UTF-8 or UTF-16): the
  interval tier named ``words``/``word`` (else the first interval tier whose
  name does not look like phones); empty and silence labels are skipped;
- ``movie.json``: whisperX output (``segments[].words[]``);
- ``movie.words.tsv``: header with ``word`` (or neuralset's ``text``), ``start``
  and ``duration`` (or ``end``) columns, times in seconds; an optional
  ``language`` column (code ``en`` or name ``english``) and, in a neuralset
  events table, a ``type`` column (only ``Word`` rows are read).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tribe_core.errors import TribeInputError
from tribe_core.events.language import language_code

SIDECAR_SUFFIXES = (".TextGrid", ".json", ".words.tsv")
SILENCE_LABELS = frozenset({"", "sp", "sil", "spn", "<sil>", "{sl}", "{lg}", "{ns}", "#", "<p:>"})
SEGMENT_GAP_S = 1.0  # a pause this long starts a new transcript segment

_TEXTGRID_TOKEN = re.compile(
    r'"((?:[^"]|"")*)"|(<exists>|<absent>)|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)'
)
_TEXTGRID_INDEX = re.compile(r"\[\s*\d*\s*\]")


def find_sidecar(stimulus_path: str | Path) -> Path | None:
    """Return the transcript sidecar of a stimulus, or ``None``.

    The ``.TextGrid`` suffix is matched case-insensitively (``.textgrid``).
    """
    stimulus_path = Path(stimulus_path)
    stem = (
        stimulus_path.name[: -len(stimulus_path.suffix)]
        if stimulus_path.suffix
        else (stimulus_path.name)
    )
    folder = stimulus_path.parent
    for suffix in SIDECAR_SUFFIXES:
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file() and candidate != stimulus_path:
            return candidate
        if suffix == ".TextGrid" and folder.is_dir():
            for other in folder.glob(f"{glob_escape(stem)}.[tT][eE][xX][tT][gG][rR][iI][dD]"):
                if other.is_file():
                    return other
    return None


def glob_escape(name: str) -> str:
    """Escape glob metacharacters of a file name."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _segments_from_words(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    segments: list[dict[str, Any]] = []
    for word in sorted(words, key=lambda w: w["start"]):
        if not segments or word["start"] - segments[-1]["end"] > SEGMENT_GAP_S:
            segments.append({"start": word["start"], "end": word["end"], "words": []})
        segments[-1]["words"].append(word)
        segments[-1]["end"] = max(segments[-1]["end"], word["end"])
    for segment in segments:
        segment["text"] = " ".join(w["word"] for w in segment["words"])
    return [{k: s[k] for k in ("start", "end", "text", "words")} for s in segments]


def _word(path: Path, text: str, start: Any, end: Any) -> dict[str, Any]:
    try:
        start_s, end_s = float(start), float(end)
    except (TypeError, ValueError):
        raise TribeInputError(f"word {text!r} has a non-numeric time", path=path) from None
    if not (np.isfinite(start_s) and np.isfinite(end_s)) or end_s < start_s or start_s < 0:
        raise TribeInputError(
            f"word {text!r} has invalid times start={start_s}, end={end_s}", path=path
        )
    return {"word": text, "start": start_s, "end": end_s}


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TribeInputError("sidecar is neither UTF-8 nor UTF-16 text", path=path) from None


def _textgrid_tiers(path: Path) -> list[tuple[str, str, list[tuple[float, float, str]]]]:
    """Parse a Praat TextGrid (long or short format) into ``(class, name, items)``."""
    text = _TEXTGRID_INDEX.sub("", _read_text(path))
    tokens: list[str | float] = []
    for match in _TEXTGRID_TOKEN.finditer(text):
        string, flag, number = match.groups()
        if string is not None:
            tokens.append(string.replace('""', '"'))
        elif flag is not None:
            tokens.append(flag)
        else:
            tokens.append(float(number))
    try:
        if tokens[:2] != ["ooTextFile", "TextGrid"]:
            raise ValueError("not a TextGrid text file")
        pos = 4  # file type, object class, xmin, xmax
        if tokens[pos] != "<exists>":
            return []
        n_tiers = int(tokens[pos + 1])
        pos += 2
        tiers = []
        for _ in range(n_tiers):
            tier_class, name = str(tokens[pos]), str(tokens[pos + 1])
            n_items = int(tokens[pos + 4])
            pos += 5
            items: list[tuple[float, float, str]] = []
            width = 3 if tier_class == "IntervalTier" else 2
            for _ in range(n_items):
                if width == 3:
                    xmin, xmax, label = tokens[pos : pos + 3]
                    items.append((float(xmin), float(xmax), str(label)))
                else:
                    time, label = tokens[pos : pos + 2]
                    items.append((float(time), float(time), str(label)))
                pos += width
            tiers.append((tier_class, name, items))
    except (IndexError, ValueError, TypeError) as error:
        raise TribeInputError(f"malformed Praat TextGrid ({error})", path=path) from None
    return tiers


def _read_textgrid(path: Path) -> list[dict[str, Any]]:
    tiers = [t for t in _textgrid_tiers(path) if t[0] == "IntervalTier"]
    if not tiers:
        raise TribeInputError("TextGrid has no interval tier", path=path)
    named = [t for t in tiers if t[1].strip().lower() in ("words", "word")]
    other = [t for t in tiers if not re.search(r"phon", t[1], re.IGNORECASE)]
    _, _, items = (named or other or tiers)[0]
    return [
        _word(path, label.strip(), xmin, xmax)
        for xmin, xmax, label in items
        if label.strip().lower() not in SILENCE_LABELS
    ]


def _read_whisperx_json(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise TribeInputError(f"invalid JSON ({error})", path=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("segments"), list):
        raise TribeInputError(
            "JSON sidecar is not a whisperX transcript (no 'segments' list)", path=path
        )
    words = []
    for segment in data["segments"]:
        for word in segment.get("words", []) or []:
            text = str(word.get("word", "")).strip()
            if not text or word.get("start") is None:
                continue  # whisperX leaves unaligned words without times: dropped
            words.append(_word(path, text, word["start"], word.get("end", word["start"])))
    language = data.get("language")
    return words, language if isinstance(language, str) else None


def _read_words_tsv(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    try:
        table = pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise TribeInputError(f"cannot parse TSV ({error})", path=path) from None
    columns = {c.strip().lower(): c for c in table.columns}
    word_column = columns.get("word", columns.get("text"))  # neuralset names it "text"
    if word_column is None or "start" not in columns:
        raise TribeInputError(
            f"words TSV needs 'word' (or 'text'), 'start' and 'duration' (or 'end') columns, "
            f"found {list(table.columns)}",
            path=path,
        )
    if "duration" not in columns and "end" not in columns:
        raise TribeInputError("words TSV needs a 'duration' or 'end' column", path=path)
    if "type" in columns:  # a neuralset events table: its Word rows
        table = table[table[columns["type"]].str.strip().str.lower() == "word"]
    words = []
    for row in table.itertuples(index=False):
        record = dict(zip(table.columns, row, strict=True))
        text = str(record[word_column]).strip()
        if not text:
            continue
        start = record[columns["start"]]
        if "duration" in columns:
            try:
                end = float(start) + float(record[columns["duration"]])
            except (TypeError, ValueError):
                end = float("nan")
        else:
            end = record[columns["end"]]
        words.append(_word(path, text, start, end))
    return words, _table_language(path, table, columns.get("language"))


def _table_language(path: Path, table: pd.DataFrame, column: str | None) -> str | None:
    """The one language of a words table's ``language`` column (code), or None."""
    if column is None:
        return None
    values = sorted({v.strip() for v in table[column].astype(str)} - {""})
    codes = sorted({language_code(v) for v in values})
    if len(codes) > 1:
        raise TribeInputError(
            f"words TSV mixes languages {values}; one stimulus has one language", path=path
        )
    return codes[0] if codes else None


def read_sidecar(path: str | Path, language: str | None = None) -> dict[str, Any]:
    """Read a transcript sidecar into a whisperX-style transcript.

    Parameters
    ----------
    path
        ``.TextGrid``, whisperX ``.json`` or ``.words.tsv`` file.
    language
        Language to record, a code (``en``) or a name (``english``); the
        file's own language (a whisperX JSON's ``language``, a words TSV's
        ``language`` column) wins; default ``"en"``. Recorded as the code.

    Returns
    -------
    dict
        ``{"language", "source": "sidecar", "segments": [...]}``; segments are
        cut at pauses longer than 1 s (whisperX JSON keeps its own words).

    Raises
    ------
    TribeInputError
        Unknown suffix or malformed content (the message names the file).
    """
    path = Path(path)
    name = path.name.lower()
    file_language = None
    if not path.is_file():
        raise TribeInputError("sidecar transcript not found", path=path)
    if name.endswith(".textgrid"):
        words = _read_textgrid(path)
    elif name.endswith(".words.tsv"):
        words, file_language = _read_words_tsv(path)
    elif name.endswith(".json"):
        words, file_language = _read_whisperx_json(path)
    else:
        raise TribeInputError(
            f"unknown sidecar type; expected one of {', '.join(SIDECAR_SUFFIXES)}", path=path
        )
    return {
        "language": language_code(file_language or language or "en"),
        "source": "sidecar",
        "segments": _segments_from_words(words),
    }
