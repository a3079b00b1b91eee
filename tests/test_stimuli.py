"""Stimulus discovery: folders, sample sheets, and errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.events.sidecar import find_sidecar
from tribe_core.stimuli import discover_stimuli, stimuli_from_config


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


def test_missing_source_says_it_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(TribeInputError, match="does not exist") as info:
        discover_stimuli(tmp_path / "stimuli")
    assert str(tmp_path / "stimuli") in str(info.value)
    assert "neither a folder" not in str(info.value)


def _bad_folder(folder: Path) -> dict[str, str]:
    """A folder with two good stimuli and one bad file of each kind: name -> problem."""
    _touch(folder / "good.wav")
    _touch(folder / "story.txt")
    _touch(folder / "slides.pptx")
    (folder / "void.mp4").write_bytes(b"")
    (folder / "gone.wav").symlink_to(folder / "nowhere.wav")
    _touch(folder / "twice.wav")
    _touch(folder / "twice.mp3")
    _touch(folder / "br{a}ce.wav")
    return {
        "slides.pptx": "unsupported suffix '.pptx'",
        "void.mp4": "file is empty (0 bytes)",
        "gone.wav": "broken or looping symlink",
        "twice.wav": "2 stimuli share the name 'twice'",
        "twice.mp3": "2 stimuli share the name 'twice'",
        "br{a}ce.wav": "invalid stimulus name 'br{a}ce'",
    }


def test_every_bad_file_is_listed_in_one_error(tmp_path: Path) -> None:
    expected = _bad_folder(tmp_path)
    with pytest.raises(TribeInputError) as info:
        discover_stimuli(tmp_path)
    message = str(info.value)
    assert message.startswith(f"file {str(tmp_path)!r}: 6 bad stimulus file(s)")
    assert "on_error: skip" in message
    lines = message.splitlines()[1:]
    assert len(lines) == len(expected)
    for name, problem in expected.items():
        (line,) = [x for x in lines if x.startswith(f"  - {str(tmp_path / name)!r}: ")]
        assert problem in line, line
    assert "good.wav" not in message and "story.txt" not in message


def test_on_error_skip_runs_the_good_ones_and_names_each_skipped(tmp_path: Path) -> None:
    expected = _bad_folder(tmp_path)
    notices: list[str] = []
    found = discover_stimuli(tmp_path, "en", on_error="skip", notify=notices.append)
    assert {n: s.kind for n, s in found.items()} == {"good": "audio", "story": "text"}
    (warning,) = [n for n in notices if n.startswith("WARNING:")]
    assert warning.startswith("WARNING: stimuli: skipped 6 bad file(s)")
    for name, problem in expected.items():
        assert f"{str(tmp_path / name)!r}: {problem}" in warning
    # nothing left after skipping is still an error
    for name in ("good.wav", "story.txt"):
        (tmp_path / name).unlink()
    with pytest.raises(TribeInputError, match=r"no stimuli found \(all 6 skipped\)"):
        discover_stimuli(tmp_path, on_error="skip", notify=notices.append)
    with pytest.raises(TribeConfigError, match="supported values are: fail, skip"):
        discover_stimuli(tmp_path, on_error="ignore")


def test_ignored_entries_are_named_in_one_line(tmp_path: Path) -> None:
    _touch(tmp_path / "talk.wav")
    _touch(tmp_path / "clip.mp4")
    _touch(tmp_path / "talk.TextGrid")
    _touch(tmp_path / "clip.words.tsv")
    _touch(tmp_path / "orphan.json")  # a transcript without its stimulus
    _touch(tmp_path / ".DS_Store")
    _touch(tmp_path / "README.md")
    (tmp_path / "old runs").mkdir()
    notices: list[str] = []
    found = discover_stimuli(tmp_path, notify=notices.append)
    assert set(found) == {"clip", "talk"}
    assert notices == [
        f"stimuli: in {str(tmp_path)!r}, not stimuli: 4 ignored (.DS_Store, README.md, "
        "old runs/, orphan.json), 2 transcript sidecar(s) next to their stimuli"
    ]
    for path in (tmp_path / ".DS_Store", tmp_path / "README.md", tmp_path / "orphan.json"):
        path.unlink()
    (tmp_path / "old runs").rmdir()
    notices.clear()
    discover_stimuli(tmp_path, notify=notices.append)
    assert notices == [
        f"stimuli: in {str(tmp_path)!r}, not stimuli: 2 transcript sidecar(s) next to their stimuli"
    ]
    (tmp_path / "talk.TextGrid").unlink()
    (tmp_path / "clip.words.tsv").unlink()
    notices.clear()
    discover_stimuli(tmp_path, notify=notices.append)
    assert notices == []


def test_sample_sheet_lists_every_bad_row(tmp_path: Path) -> None:
    _touch(tmp_path / "x.wav")
    _touch(tmp_path / "y.wav")
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(
        "stimulus\tpath\n"
        "ok\tx.wav\n"
        "lost\tmissing.wav\n"
        "nopath\t\n"
        "../up\ty.wav\n"
        "dup\tx.wav\n"
        "dup\ty.wav\n",
        encoding="utf-8",
    )
    with pytest.raises(TribeInputError) as info:
        discover_stimuli(sheet)
    lines = str(info.value).splitlines()
    assert "5 bad stimulus file(s)" in lines[0]
    assert lines[1:] == [
        f"  - {str(tmp_path / 'missing.wav')!r}: file does not exist",
        f"  - {str(sheet) + ':4'!r}: row has no 'path'",
        f"  - {str(tmp_path / 'y.wav')!r}: invalid stimulus name '../up': contains a path "
        "separator; it would escape the results folder",
        f"  - {str(tmp_path / 'x.wav')!r}: 2 stimuli share the name 'dup' "
        f"({str(tmp_path / 'x.wav')!r}, {str(tmp_path / 'y.wav')!r}); rename all but one "
        "(the file stem is the stimulus name)",
        f"  - {str(tmp_path / 'y.wav')!r}: 2 stimuli share the name 'dup' "
        f"({str(tmp_path / 'x.wav')!r}, {str(tmp_path / 'y.wav')!r}); rename all but one "
        "(the file stem is the stimulus name)",
    ]
    assert set(discover_stimuli(sheet, on_error="skip", notify=lambda _: None)) == {"ok"}


def test_config_value_as_string_or_mapping(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _touch(tmp_path / "a.wav")
    _touch(tmp_path / "b.docx")
    with pytest.raises(TribeInputError, match=r"b\.docx.*unsupported suffix"):
        stimuli_from_config(str(tmp_path), "en")
    with pytest.raises(TribeInputError, match=r"b\.docx.*unsupported suffix"):
        stimuli_from_config({"source": str(tmp_path), "on_error": "fail"}, "en")
    found = stimuli_from_config({"source": str(tmp_path), "on_error": "skip"}, "en")
    assert set(found) == {"a"}
    err = capsys.readouterr().err
    assert "WARNING: stimuli: skipped 1 bad file(s)" in err and str(tmp_path / "b.docx") in err
    with pytest.raises(TribeConfigError, match="without `source`"):
        stimuli_from_config({"on_error": "skip"}, "en")


@pytest.mark.parametrize(
    ("given", "code"),
    [("english", "en"), ("English", "en"), ("en", "en"), ("en-US", "en"), ("french", "fr")],
)
def test_languages_are_recorded_as_codes(tmp_path: Path, given: str, code: str) -> None:
    _touch(tmp_path / "x.wav")
    assert discover_stimuli(tmp_path, default_language=given)["x"].language == code
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"stimulus\tpath\tlanguage\ny\tx.wav\t{given}\n")
    assert discover_stimuli(sheet, default_language="de")["y"].language == code
