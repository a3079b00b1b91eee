"""tribe_core.events: sidecar transcripts and the event table (sentences, contexts)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tribe_core.errors import TribeInputError
from tribe_core.events import (
    EVENT_COLUMNS,
    build_events,
    find_sidecar,
    read_events_tsv,
    read_sidecar,
    read_transcript,
    write_events_tsv,
    write_transcript,
)
from tribe_core.media import MediaInfo, write_wav

WORDS = [
    ("hello", 0.1, 0.4),
    ("World,", 0.5, 0.9),
    ('"this', 1.0, 1.2),
    ('is"', 1.3, 1.4),
    ("Dr.", 1.5, 1.6),
    ("don't", 1.7, 1.9),
    ("go?", 2.0, 2.2),
    ("next", 2.3, 2.5),
    ("one.", 2.6, 2.8),
    ("café", 2.9, 3.0),
    ("naïve", 3.1, 3.3),
    ("NA", 3.4, 3.5),
    ("42", 3.6, 3.7),
    ("last!", 3.8, 4.0),
    ("and", 5.0, 5.1),
    ("more", 5.2, 5.4),
]
AUDIO_MEDIA = MediaInfo("audio", "a.wav", 10.0, has_audio=True, has_video=False, fps=None)


def transcript_of(words: list[tuple[str, float, float]], language: str = "en") -> dict:
    return {
        "language": language,
        "source": "sidecar",
        "segments": [
            {
                "start": words[0][1],
                "end": words[-1][2],
                "text": " ".join(w for w, _, _ in words),
                "words": [{"word": w, "start": s, "end": e} for w, s, e in words],
            }
        ],
    }


def test_build_events_rows_and_columns() -> None:
    video = MediaInfo("video", "m.mp4", 12.0, has_audio=True, has_video=True, fps=25.0)
    events = build_events(transcript_of(WORDS), video)
    assert list(events.columns) == EVENT_COLUMNS
    assert list(events.type[:2]) == ["Audio", "Video"]
    assert events.iloc[0][["start", "duration"]].tolist() == [0.0, 12.0]
    words = events[events.type == "Word"]
    assert words.text.tolist() == [w for w, _, _ in WORDS]
    np.testing.assert_allclose(words.start, [s for _, s, _ in WORDS])
    np.testing.assert_allclose(words.duration, [e - s for _, s, e in WORDS])
    # the reference's values: the language name on Word rows, none on Audio/Video rows
    assert events.language.tolist() == ["", ""] + ["english"] * len(WORDS)
    silent = MediaInfo("video", "s.mp4", 600.0, has_audio=False, has_video=True, fps=25.0)
    only_video = build_events(transcript_of(WORDS[:0] or [("x", 0, 0.1)]), silent)
    assert only_video.type.tolist() == ["Video", "Word"]
    assert only_video.duration.iloc[0] == 600.0


def test_sentences_and_contexts_follow_the_reference_rules() -> None:
    words = build_events(transcript_of(WORDS), AUDIO_MEDIA).query("type == 'Word'")
    first = 'Hello world, "this is" dr. '  # capitalize() lower-cases the rest
    assert words.sentence.iloc[0] == first
    assert words.sentence_char.tolist()[:5] == [0, 6, 14, 19, 23]  # first letter of each word
    assert words.sentence.iloc[5] == "don't go?. "  # "dr." ends a sentence once lower-cased
    assert words.sentence.iloc[7] == "Next one. "
    assert words.context.iloc[0] == "Hello"
    assert words.context.iloc[2] == 'Hello world, "this '  # reference quirk: +1 char per quote
    assert words.context.iloc[8] == first + "don't go?. Next one."
    assert words.context.iloc[-1].endswith("Café naïve na 42 last!. And more")
    # each context ends with its word and extends the previous context
    for prev, cur in zip(words.context.iloc[:-1], words.context.iloc[1:], strict=True):
        assert cur.startswith(prev.rstrip('"'))


def test_context_keeps_1024_preceding_words() -> None:
    words = [(f"w{i}", i * 0.3, i * 0.3 + 0.2) for i in range(1100)]
    events = build_events(transcript_of(words), AUDIO_MEDIA).query("type == 'Word'")
    last = events.context.iloc[-1]
    assert len(last.split()) == 1025  # 1024 preceding words + the word itself
    assert last.split()[0] == "w75" and last.endswith("w1099")
    assert len(events.context.iloc[10].split()) == 11


def test_words_without_times_are_dropped_and_sorted() -> None:
    transcript = transcript_of([("b", 2.0, 2.5), ("a", 1.0, 1.5)])
    transcript["segments"][0]["words"].append({"word": "lost", "start": None, "end": None})
    transcript["segments"][0]["words"].append({"word": "gone"})
    words = build_events(transcript, AUDIO_MEDIA).query("type == 'Word'")
    assert words.text.tolist() == ["a", "b"]


def test_empty_transcript_gives_media_rows_only() -> None:
    events = build_events({"language": "en", "source": "none", "segments": []}, AUDIO_MEDIA)
    assert events.type.tolist() == ["Audio"]


def test_events_tsv_round_trip(tmp_path: Path) -> None:
    events = build_events(transcript_of(WORDS), AUDIO_MEDIA)
    path = tmp_path / "events.tsv"
    write_events_tsv(events, path)
    back = read_events_tsv(path)
    assert list(back.columns) == EVENT_COLUMNS
    assert back.text.tolist() == events.text.tolist()  # "NA" and "42" stay text
    assert back.context.tolist() == events.context.tolist()
    assert back.sentence.tolist() == events.sentence.tolist()
    np.testing.assert_allclose(back.start, events.start, atol=1e-6)
    assert np.isnan(back.sentence_char.iloc[0])
    assert not list(tmp_path.glob(".*tmp*"))


def test_transcript_json_round_trip_and_validation(tmp_path: Path) -> None:
    transcript = transcript_of(WORDS)
    write_transcript(transcript, tmp_path / "transcript.json")
    assert read_transcript(tmp_path / "transcript.json") == transcript
    (tmp_path / "bad.json").write_text(json.dumps({"language": "en", "segments": []}))
    with pytest.raises(TribeInputError, match="bad.json.*source"):
        read_transcript(tmp_path / "bad.json")


# -- oracle: neuralset 0.0.2's own transforms (test-only install) -----------------------


def neuralset_events(words: list[tuple[str, float, float]]) -> pd.DataFrame:
    pytest.importorskip("Levenshtein", reason="neuralset's word matcher needs Levenshtein")
    ns_utils = pytest.importorskip("neuralset.utils", reason="neuralset 0.0.2 not installed")
    from neuralset.events.transforms import text as ns_text
    from neuralset.events.transforms import utils as ns_tutils
    from neuralset.events.utils import standardize_events

    from tribe_core.events.annotate import _spacy_pipeline

    # neuralset would load (and download) en_core_web_lg; give it the same offline
    # splitter we use, so the comparison is about the transforms themselves
    def offline_model(*, model: str = "", language: str = "") -> object:
        return _spacy_pipeline("en", None)

    patch = pytest.MonkeyPatch()
    patch.setattr(ns_utils, "get_spacy_model", offline_model)
    patch.setattr(ns_tutils._ns_utils, "get_spacy_model", offline_model)
    ns_tutils.parse_text.cache_clear()
    try:
        frame = pd.DataFrame(
            [
                dict(
                    type="Word",
                    start=s,
                    duration=e - s,
                    text=w,
                    language="en",
                    timeline="t",
                    split="all",
                )  # fmt: skip
                for w, s, e in words
            ]
        )
        frame = standardize_events(frame)
        frame = ns_text.AddText()(frame)
        frame = ns_text.AddSentenceToWords(max_unmatched_ratio=0.5)(frame)
        frame = ns_text.AddContextToWords(sentence_only=False, max_context_len=1024)(frame)
    finally:
        patch.undo()
        ns_tutils.parse_text.cache_clear()
    return frame[frame.type == "Word"].reset_index(drop=True)


@pytest.mark.parametrize("n_repeats", [1, 3])
def test_event_table_matches_neuralset(n_repeats: int) -> None:
    words = []
    for r in range(n_repeats):
        words += [(w, s + 10 * r, e + 10 * r) for w, s, e in WORDS]
    ours = build_events(transcript_of(words), AUDIO_MEDIA).query("type == 'Word'")
    ref = neuralset_events(words)
    assert ours.text.tolist() == ref.text.tolist()
    np.testing.assert_allclose(ours.start, ref.start)
    np.testing.assert_allclose(ours.duration, ref.duration)
    assert ours.sentence.tolist() == ref.sentence.tolist()
    np.testing.assert_array_equal(ours.sentence_char.to_numpy(), ref.sentence_char.to_numpy())
    assert ours.context.tolist() == ref.context.tolist()


# -- sidecars -------------------------------------------------------------------------

TEXTGRID_LONG = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 3.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "phone"
        xmin = 0
        xmax = 3.5
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 3.5
            text = "HH"
    item [2]:
        class = "IntervalTier"
        name = "word"
        xmin = 0
        xmax = 3.5
        intervals: size = 5
        intervals [1]:
            xmin = 0
            xmax = 0.25
            text = ""
        intervals [2]:
            xmin = 0.25
            xmax = 0.8
            text = "he said"
        intervals [3]:
            xmin = 0.8
            xmax = 1.0
            text = "sp"
        intervals [4]:
            xmin = 1.0
            xmax = 1.5
            text = "\"\"quoted\"\""
        intervals [5]:
            xmin = 3.0
            xmax = 3.5
            text = "end"
"""

TEXTGRID_TRUNCATED = 'File type = "ooTextFile"\nObject class = "TextGrid"\n0\n1\n<exists>\n3\n'
TEXTGRID_SHORT = """File type = "ooTextFile"
Object class = "TextGrid"

0
3.5
<exists>
1
"IntervalTier"
"words"
0
3.5
3
0.25
0.8
"he"
0.8
1.0
""
1.0e0
1.5
"café"
"""


def test_read_textgrid_long_format_picks_word_tier(tmp_path: Path) -> None:
    path = tmp_path / "movie.TextGrid"
    path.write_text(TEXTGRID_LONG, encoding="utf-8")
    transcript = read_sidecar(path, language="en")
    assert transcript["source"] == "sidecar" and transcript["language"] == "en"
    words = [w for s in transcript["segments"] for w in s["words"]]
    assert [w["word"] for w in words] == ["he said", '"quoted"', "end"]
    assert [(w["start"], w["end"]) for w in words] == [(0.25, 0.8), (1.0, 1.5), (3.0, 3.5)]
    assert len(transcript["segments"]) == 2  # 1.5 s pause starts a new segment


def test_read_textgrid_short_format_utf16(tmp_path: Path) -> None:
    path = tmp_path / "movie.TextGrid"
    path.write_bytes(TEXTGRID_SHORT.encode("utf-16"))
    words = [w for s in read_sidecar(path)["segments"] for w in s["words"]]
    assert [(w["word"], w["start"], w["end"]) for w in words] == [
        ("he", 0.25, 0.8),
        ("café", 1.0, 1.5),
    ]


def test_read_whisperx_json_drops_untimed_words(tmp_path: Path) -> None:
    path = tmp_path / "clip.json"
    data = {
        "language": "fr",
        "segments": [
            {
                "start": 0.5,
                "end": 2.0,
                "text": " Bonjour 2024 amis.",
                "words": [
                    {"word": "Bonjour", "start": 0.5, "end": 0.9, "score": 0.9},
                    {"word": "2024"},
                    {"word": "amis.", "start": 1.2, "end": 1.6},
                ],
            },  # fmt: skip
        ],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    transcript = read_sidecar(path, language="en")
    assert transcript["language"] == "fr"
    words = transcript["segments"][0]["words"]
    assert words == [
        {"word": "Bonjour", "start": 0.5, "end": 0.9},
        {"word": "amis.", "start": 1.2, "end": 1.6},
    ]


def test_read_words_tsv(tmp_path: Path) -> None:
    path = tmp_path / "clip.words.tsv"
    path.write_text("word\tstart\tduration\nNA\t0.5\t0.25\nnull\t1.0\t0.5\n", encoding="utf-8")
    words = read_sidecar(path)["segments"][0]["words"]
    assert words == [
        {"word": "NA", "start": 0.5, "end": 0.75},
        {"word": "null", "start": 1.0, "end": 1.5},
    ]
    path.write_text("word\tstart\tend\nhi\t0.5\t0.7\n", encoding="utf-8")
    assert read_sidecar(path)["segments"][0]["words"][0]["end"] == 0.7


def test_read_words_tsv_with_neuralset_text_header_and_language(tmp_path: Path) -> None:
    """neuralset's words table: ``text`` instead of ``word``, a ``language`` name, and
    (in a whole events table) rows of other types, which are not words."""
    path = tmp_path / "clip.words.tsv"
    path.write_text(
        "type\tstart\tduration\ttext\tlanguage\n"
        "Audio\t0.0\t10.0\t\t\n"
        "Word\t0.5\t0.25\tBonjour\tfrench\n"
        "Word\t1.0\t0.5\tamis\tfrench\n",
        encoding="utf-8",
    )
    transcript = read_sidecar(path, language="en")
    assert transcript["language"] == "fr"  # the file's own language wins, as a code
    assert transcript["segments"][0]["words"] == [
        {"word": "Bonjour", "start": 0.5, "end": 0.75},
        {"word": "amis", "start": 1.0, "end": 1.5},
    ]
    events = build_events(transcript, AUDIO_MEDIA)
    assert events.language.tolist() == ["", "french", "french"]
    path.write_text("text\tstart\tduration\nhi\t0.5\t0.25\n", encoding="utf-8")
    assert read_sidecar(path, language="english")["language"] == "en"


def test_language_codes_and_names_map_both_ways() -> None:
    from whisperx.utils import LANGUAGES as WHISPER_NAMES

    from tribe_core.events.language import LANGUAGE_NAMES, language_code, language_name

    # the reference names languages as whisper does ("english"; its ExtractWordsFromAudio)
    assert all(WHISPER_NAMES[code] == name for code, name in LANGUAGE_NAMES.items())
    for code, name in LANGUAGE_NAMES.items():
        assert language_code(name) == language_code(code) == code
        assert language_name(code) == language_name(name.upper()) == name
    assert language_code(" en-US ") == language_code("en_GB") == "en"
    assert language_code("xx") == language_name("xx") == "xx"  # unknown: unchanged
    english = build_events(transcript_of(WORDS, language="english"), AUDIO_MEDIA)
    pd.testing.assert_frame_equal(english, build_events(transcript_of(WORDS), AUDIO_MEDIA))


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("x.words.tsv", "text\tonset\nhi\t1\n", r"needs 'word' \(or 'text'\), 'start'"),
        ("x.words.tsv", "text\tstart\nhi\t1\n", "needs a 'duration' or 'end' column"),
        ("x.words.tsv", "text\tstart\tend\tlanguage\na\t1\t2\ten\nb\t2\t3\tfr\n", "mixes"),
        ("x.words.tsv", "word\tstart\tduration\nhi\tsoon\t1\n", "non-numeric"),
        ("x.words.tsv", "word\tstart\tduration\nhi\t2\t-1\n", "invalid times"),
        ("x.json", '{"text": "no segments"}', "not a whisperX transcript"),
        ("x.json", "{broken", "invalid JSON"),
        ("x.TextGrid", TEXTGRID_TRUNCATED, "malformed"),
    ],
)  # fmt: skip
def test_bad_sidecars_name_the_file(tmp_path: Path, name: str, content: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TribeInputError, match=match) as error:
        read_sidecar(path)
    assert name in str(error.value)


def test_find_sidecar_order_and_odd_names(tmp_path: Path) -> None:
    stim = tmp_path / "my movie [v2] $(x).mp4"
    stim.write_bytes(b"")
    assert find_sidecar(stim) is None
    (tmp_path / "my movie [v2] $(x).words.tsv").write_text("word\tstart\tduration\n")
    assert find_sidecar(stim).name == "my movie [v2] $(x).words.tsv"
    (tmp_path / "my movie [v2] $(x).json").write_text("{}")
    assert find_sidecar(stim).name == "my movie [v2] $(x).json"
    (tmp_path / "my movie [v2] $(x).textgrid").write_text("")
    assert find_sidecar(stim).name == "my movie [v2] $(x).textgrid"
    assert find_sidecar(tmp_path / "other.mp4") is None


# -- long media through the sidecar path ------------------------------------------------

LONG_SENTENCES = [
    "The old man walked slowly to the river.",
    "A bright red bird sang in the tall tree.",
    "Children played near the small stone house.",
    "The wind carried leaves across the empty field.",
    "She opened the window and looked at the sea.",
    "Two dogs ran quickly along the sandy beach.",
]


def make_long_speech(folder: Path, min_duration_s: float = 180.0) -> tuple[Path, list[dict]]:
    """Speech of known timing: espeak-ng sentences separated by silences of known length.

    Returns the 16 kHz WAV and, per sentence, ``{"text", "onset", "offset"}``
    in seconds (onset = first audible sample of the sentence).
    """
    from scipy.signal import resample_poly

    rendered = []
    for i, sentence in enumerate(LONG_SENTENCES):
        raw = folder / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-w", str(raw), sentence], check=True)
        data = raw.read_bytes()
        pcm = np.frombuffer(data[data.find(b"data") + 8 :], dtype="<i2").astype(np.float64)
        audio = np.round(resample_poly(pcm, 160, 441)).astype(np.int16)
        loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > 64)
        rendered.append(audio[loud[0] : loud[-1] + 1])
    pieces, sentences, cursor = [], [], 0
    gaps_s = [0.7, 1.3, 2.1, 3.4]
    k = 0
    while cursor < min_duration_s * 16000:
        gap = np.zeros(int(gaps_s[k % len(gaps_s)] * 16000), dtype=np.int16)
        pieces.append(gap)
        cursor += gap.size
        audio = rendered[k % len(rendered)]
        sentences.append(
            {
                "text": LONG_SENTENCES[k % len(rendered)],
                "onset": cursor / 16000,
                "offset": (cursor + audio.size) / 16000,
            }
        )
        pieces.append(audio)
        cursor += audio.size
        k += 1
    pieces.append(np.zeros(16000, dtype=np.int16))
    wav = folder / "long.wav"
    write_wav(wav, np.concatenate(pieces), 16000)
    return wav, sentences


def textgrid_for(sentences: list[dict], duration_s: float) -> str:
    """A long-format TextGrid whose words spread evenly over each sentence."""
    intervals = []
    for sentence in sentences:
        words = sentence["text"].split()
        step = (sentence["offset"] - sentence["onset"]) / len(words)
        for j, word in enumerate(words):
            start = sentence["onset"] + j * step
            intervals.append((start, start + step, word))
    header = f"""File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = {duration_s}
tiers? <exists>
size = 1
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = {duration_s}
        intervals: size = {len(intervals)}"""
    lines = header.splitlines()
    for n, (start, end, word) in enumerate(intervals, 1):
        lines += [f"        intervals [{n}]:", f"            xmin = {start!r}",
                  f"            xmax = {end!r}", f'            text = "{word}"']  # fmt: skip
    return "\n".join(lines) + "\n"


def test_long_media_word_times_through_sidecar(tmp_path: Path) -> None:
    """>= 3 min of known-timing speech: events.tsv keeps every word at its time."""
    wav, sentences = make_long_speech(tmp_path)
    duration_s = sentences[-1]["offset"] + 1.0
    stim = tmp_path / "long.wav"
    sidecar = tmp_path / "long.TextGrid"
    sidecar.write_text(textgrid_for(sentences, duration_s), encoding="utf-8")
    assert find_sidecar(stim) == sidecar
    from tribe_core.media import probe_media

    media = probe_media(wav)
    assert media.duration_s == pytest.approx(duration_s, abs=0.01)
    events = build_events(read_sidecar(sidecar), media)
    write_events_tsv(events, tmp_path / "events.tsv")
    words = read_events_tsv(tmp_path / "events.tsv").query("type == 'Word'")
    assert len(words) == sum(len(s["text"].split()) for s in sentences)
    firsts = words.groupby((words.sentence_char == 0).cumsum()).start.first().to_numpy()
    onsets = np.array([s["onset"] for s in sentences])
    assert firsts.size == onsets.size
    assert np.abs(firsts - onsets).max() < 0.25
    assert words.start.max() < media.duration_s  # no chunk offset pushes words past the end
