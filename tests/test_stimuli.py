"""Stimulus discovery: folders, sample sheets, and errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tribe_core.errors import TribeInputError
from tribe_core.events.sidecar import find_sidecar
from tribe_core.stimuli import discover_stimuli


def _touch(path: Path, text: str = "x") -> Path:
    path.write_text(text)
    return path


def test_folder_kinds_and_sidecars_are_skipped(tmp_path: Path) -> None:
    _touch(tmp_path / "clip.mp4")
    _touch(tmp_path / "talk.wav")
    _touch(tmp_path / "talk.TextGrid")
    _touch(tmp_path / "story.txt")
    _touch(tmp_path / "it's a $(name) ü.mkv")
    found = discover_stimuli(tmp_path, default_language="en")
    assert {n: s.kind for n, s in found.items()} == {
        "clip": "video",
        "story": "text",
        "talk": "audio",
        "it's a $(name) ü": "video",
    }
    assert all(s.language == "en" for s in found.values())
    assert find_sidecar(tmp_path / "talk.wav") == tmp_path / "talk.TextGrid"
    assert find_sidecar(tmp_path / "clip.mp4") is None


def test_same_stem_twice_names_both_files(tmp_path: Path) -> None:
    _touch(tmp_path / "a.mp4")
    _touch(tmp_path / "a.wav")
    with pytest.raises(TribeInputError, match=r"a\.mp4.*a\.wav|a\.wav.*a\.mp4"):
        discover_stimuli(tmp_path)


def test_unsupported_suffix_names_file(tmp_path: Path) -> None:
    _touch(tmp_path / "notes.docx")
    with pytest.raises(TribeInputError, match=r"notes\.docx.*unsupported suffix"):
        discover_stimuli(tmp_path)


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    with pytest.raises(TribeInputError, match=r"loop\.mp4"):
        discover_stimuli(tmp_path)


def test_sample_sheet_relative_paths_language_and_missing(tmp_path: Path) -> None:
    _touch(tmp_path / "x.wav")
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("stimulus\tpath\tlanguage\nfirst\tx.wav\tfr\n")
    found = discover_stimuli(sheet, default_language="en")
    assert found["first"].path == tmp_path / "x.wav"
    assert found["first"].language == "fr"
    sheet.write_text("stimulus\tpath\nfirst\tmissing.wav\n")
    with pytest.raises(TribeInputError, match=r"missing\.wav.*does not exist"):
        discover_stimuli(sheet)
    sheet.write_text("name\tfile\nfirst\tx.wav\n")
    with pytest.raises(TribeInputError, match="columns 'stimulus' and 'path'"):
        discover_stimuli(sheet)


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TribeInputError, match="no stimuli"):
        discover_stimuli(tmp_path)
