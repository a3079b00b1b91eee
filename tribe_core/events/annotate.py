"""The event table (``events.tsv``): Audio/Video rows and Word rows with sentence context.

Word rows follow neuralset 0.0.2's ``AddText`` -> ``AddSentenceToWords`` ->
``AddContextToWords(sentence_only=False, max_context_len=1024)`` chain, which
the reference runs on whisperX words:

1. the words are joined with spaces and split into sentences; each sentence is
   ``str.capitalize()``-d (first letter upper, *the rest lower*), trailing
   periods are stripped and sentences are re-joined with ``". "``;
2. that punctuated text is split into sentences again; each word gets the
   sentence holding it (with its trailing whitespace) and ``sentence_char``,
   the offset in that sentence of the word's first letter or digit;
3. a word's ``context`` is the text of up to 1,024 preceding words plus the
   word itself, cut out of those sentence strings (so it carries the
   capitalisation and punctuation the text model reads).

The sentence splitter is spaCy's rule-based ``sentencizer`` on a blank pipeline
(the reference loads the trained ``en_core_web_lg``, not installable offline;
pass ``spacy_model`` to use it). Both split after ``. ! ?`` in the common case;
the trained parser may also split unpunctuated run-on speech, or keep
abbreviations such as "Dr." inside a sentence, where the sentencizer does not.
Without spaCy a regular expression splits after runs of ``. ! ? …``.

Words are placed on the file's timeline exactly as the transcript says: long
media are not re-chunked, so no chunk offset is ever added. (The reference,
https://github.com/facebookresearch/tribev2, chunks long audio with ``ChunkEvents`` in
``tribev2/demo_utils.py`` and ``ExtractWordsFromAudio`` in ``tribev2/eventstransforms.py``
adds ``start + offset`` to file-relative word times.)
"""

from __future__ import annotations

import bisect
import functools
import re
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tribe_core.errors import TribeInputError
from tribe_core.events.language import language_code, language_name
from tribe_core.io.atomic import atomic_path
from tribe_core.media.probe import MediaInfo

EVENT_COLUMNS = [
    "type",
    "start",
    "duration",
    "text",
    "sentence",
    "sentence_char",
    "context",
    "language",
]
MAX_CONTEXT_WORDS = 1024
_LEADING_PUNCT = re.compile(r"^[\W_]+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")
_REGEX_SENTENCE = re.compile(r"[.!?…。！？]+[\"'”’)\]]*(?:\s+|$)")


@functools.lru_cache(maxsize=4)
def _spacy_pipeline(language: str, spacy_model: str | None) -> Any:
    import spacy

    if spacy_model:
        return spacy.load(spacy_model)
    try:
        nlp = spacy.blank(language)
    except (ImportError, KeyError, ValueError):  # no language data for this code
        nlp = spacy.blank("xx")
    nlp.add_pipe("sentencizer")
    return nlp


def sentence_spans(
    text: str, language: str = "en", spacy_model: str | None = None
) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text``.

    Parameters
    ----------
    text
        Text to split.
    language
        ISO 639-1 code selecting spaCy's tokenizer rules.
    spacy_model
        Optional trained spaCy pipeline name (e.g. ``en_core_web_lg``).

    Returns
    -------
    list of (start, end)
        ``text[start:end]`` is a sentence *with* its trailing whitespace
        (spaCy's ``text_with_ws``); spans tile the text.
    """
    if not text:
        return []
    try:
        nlp = _spacy_pipeline(language, spacy_model)
    except ImportError:
        if spacy_model:
            raise
        nlp = None
    if nlp is not None:
        nlp.max_length = max(nlp.max_length, len(text) + 1)  # hours of speech: > 1M chars
        doc = nlp(text)
        return [(s.start_char, s.start_char + len(s.text_with_ws)) for s in doc.sents]
    spans, start = [], 0
    for match in _REGEX_SENTENCE.finditer(text):
        if match.end() > start:
            spans.append((start, match.end()))
            start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _transcript_words(transcript: dict[str, Any]) -> list[dict[str, Any]]:
    words: list[dict[str, Any]] = []
    for segment in transcript.get("segments", []):
        for word in segment.get("words", []):
            text = str(word.get("word", "")).strip()
            start = word.get("start")
            if not text or start is None or not np.isfinite(float(start)):
                continue
            end = word.get("end")
            end = float(start) if end is None or not np.isfinite(float(end)) else float(end)
            words.append({"text": text, "start": float(start), "end": max(end, float(start))})
    words.sort(key=lambda w: w["start"])  # stable: ties keep transcript order
    return words


def _punctuate(
    texts: list[str], language: str, spacy_model: str | None
) -> tuple[str, list[int | None]]:
    """neuralset's ``AddText``: the punctuated text and each word's offset in it.

    Returns the text and, per word, the offset of its first letter/digit in
    the text (``None`` where capitalisation changed a sentence's length).
    """
    joined = " ".join(texts)
    offsets, pos = [], 0
    for text in texts:
        offsets.append(pos)
        pos += len(text) + 1
    pieces: list[str] = []
    shifts: list[tuple[int, int, int | None]] = []  # (start, end, shift) per sentence
    new_start = 0
    for start, end in sentence_spans(joined, language, spacy_model):
        sentence = joined[start:end].rstrip()
        capitalised = sentence.capitalize()
        piece = capitalised.rstrip(".")
        shift = new_start - start if len(capitalised) == len(sentence) else None
        shifts.append((start, start + len(sentence), shift))
        pieces.append(piece)
        new_start += len(piece) + 2
    punctuated = ". ".join(pieces)
    starts = [s[0] for s in shifts]
    result: list[int | None] = []
    for text, offset in zip(texts, offsets, strict=True):
        k = bisect.bisect_right(starts, offset) - 1
        shift = shifts[k][2] if k >= 0 else None
        lead = _LEADING_PUNCT.match(text)
        core = _EDGE_PUNCT.sub("", text)
        if shift is None or not core:
            result.append(None)
            continue
        at = offset + shift + (lead.end() if lead else 0)
        found = punctuated[at : at + len(core)]
        result.append(at if found.lower() == core.lower() else None)
    return punctuated, result


def _contexts(
    texts: list[str], sentences: list[str], chars: list[float], max_words: int
) -> list[str]:
    """neuralset's ``AddContextToWords(sentence_only=False)`` semantics."""
    contexts: list[str] = []
    parts: deque[str] = deque(maxlen=max_words)
    previous: tuple[str, int] | None = None
    cut = 0
    for text, sentence, char in zip(texts, sentences, chars, strict=True):
        if not sentence or not np.isfinite(char):
            contexts.append("")  # unmatched word: no context, and not a "previous" word
            continue
        char_i = int(char)
        if previous is None:
            parts.clear()
            cut = 0
        elif sentence != previous[0] or char_i <= previous[1]:
            parts[-1] += previous[0][cut:]
            cut = 0
        elif parts:
            parts[-1] += sentence[cut:char_i]
            cut = char_i
        end = char_i + len(text)
        new = sentence[cut:end]
        contexts.append("".join(parts) + new)
        parts.append(new)
        cut = end
        previous = (sentence, char_i)
    return contexts


def build_events(
    transcript: dict[str, Any],
    media: MediaInfo,
    *,
    max_context_words: int = MAX_CONTEXT_WORDS,
    spacy_model: str | None = None,
) -> pd.DataFrame:
    """Build the event table of one stimulus.

    Parameters
    ----------
    transcript
        whisperX-style transcript (``segments[].words[]`` with ``word``,
        ``start``, ``end`` in seconds from the file start); words without a
        start are dropped. Its ``language`` may be a code (``en``) or a name
        (``english``).
    media
        The stimulus; gives one ``Audio`` row (when it has audio) and one
        ``Video`` row (when it has video) spanning ``[0, duration_s]``.
    max_context_words
        Preceding words kept in a word's context (reference: 1024).
    spacy_model
        Optional trained spaCy pipeline for sentence splitting.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EVENT_COLUMNS`, Audio/Video rows first, then Word rows
        sorted by start. ``sentence_char`` is NaN for a word that could not be
        placed in a sentence (its context is then empty, as in the reference).
        ``language`` is the reference's name (``english``) on Word rows and
        empty on Audio/Video rows.
    """
    # spaCy takes the code; the column holds the reference's name ("english"), on Word
    # rows only, as in the reference (its Audio/Video events carry no language).
    language = language_code(str(transcript.get("language") or "en"))
    word_language = language_name(language)
    rows: list[dict[str, Any]] = []
    for kind, present in (("Audio", media.has_audio), ("Video", media.has_video)):
        if present and media.duration_s > 0:
            rows.append(
                {
                    "type": kind,
                    "start": 0.0,
                    "duration": float(media.duration_s),
                    "text": "",
                    "sentence": "",
                    "sentence_char": np.nan,
                    "context": "",
                    "language": "",
                }
            )
    words = _transcript_words(transcript)
    texts = [w["text"] for w in words]
    punctuated, offsets = _punctuate(texts, language, spacy_model) if texts else ("", [])
    spans = sentence_spans(punctuated, language, spacy_model) if punctuated else []
    span_starts = [s for s, _ in spans]
    sentences, chars = [], []
    for offset in offsets:
        if offset is None:
            sentences.append("")
            chars.append(np.nan)
            continue
        k = bisect.bisect_right(span_starts, offset) - 1
        start, end = spans[k]
        sentences.append(punctuated[start:end])
        chars.append(float(offset - start))
    contexts = _contexts(texts, sentences, chars, max_context_words)
    for word, sentence, char, context in zip(words, sentences, chars, contexts, strict=True):
        rows.append(
            {
                "type": "Word",
                "start": word["start"],
                "duration": word["end"] - word["start"],
                "text": word["text"],
                "sentence": sentence,
                "sentence_char": char,
                "context": context,
                "language": word_language,
            }
        )
    return pd.DataFrame(rows, columns=EVENT_COLUMNS).astype(
        {"start": float, "duration": float, "sentence_char": float}
    )


def write_events_tsv(events: pd.DataFrame, path: str | Path) -> None:
    """Write an event table as TSV atomically (columns :data:`EVENT_COLUMNS`)."""
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"event table lacks columns {missing}")
    with atomic_path(path) as tmp:
        events[EVENT_COLUMNS].to_csv(tmp, sep="\t", index=False, float_format="%.6f")


def read_events_tsv(path: str | Path) -> pd.DataFrame:
    """Read ``events.tsv``; words such as "NA" or "null" stay text."""
    path = Path(path)
    try:
        events = pd.read_csv(
            path,
            sep="\t",
            keep_default_na=False,
            dtype={c: str for c in ("type", "text", "sentence", "context", "language")},
        )
    except (OSError, pd.errors.ParserError) as error:
        raise TribeInputError(f"cannot read event table: {error}", path=path) from None
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise TribeInputError(f"event table lacks columns {missing}", path=path)
    for column in ("start", "duration", "sentence_char"):
        events[column] = pd.to_numeric(events[column], errors="coerce").astype(float)
    return events
