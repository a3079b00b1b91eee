"""The bad-input table of docs/reliability.md: each case fails clearly, early, and alone.

Most cases call the stage functions directly (fast); the cases that are about the
workflow (discovery, config validation, planning) run ``snakemake --dry-run`` on a
clean copy of the repository. A real run on a stimulus whose name has spaces,
quotes, unicode and shell metacharacters is marked ``slow``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.workflow_helpers import SNAKEMAKE, make_workdir, planned_jobs, snakemake
from tribe_core.errors import TribeConfigError, TribeInputError
from tribe_core.io.zarr_store import read_feature_store, store_matches
from tribe_core.stages import (
    PredictSettings,
    checkpoint_meta,
    run_annotate_words,
    run_extract_audio,
    run_extract_features,
    run_predict,
    run_synthesize_speech,
)
from tribe_core.stimuli import discover_stimuli

WEIRD_NAME = 'it\'s a "q" $(touch PWNED); `id` & ü|x *'


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *args], check=True)


def _tone(path: Path, seconds: float) -> None:
    _ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=300:duration={seconds}", "-ar", "16000", str(path)
    )


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small bad (and borderline) inputs, made with ffmpeg in about a second."""
    d = tmp_path_factory.mktemp("bad")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=96x72:rate=25:duration=2",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
        "-pix_fmt", "yuv420p", "-shortest", str(d / "good.mp4"),
    )  # fmt: skip
    (d / "corrupt.mp4").write_bytes((d / "good.mp4").read_bytes()[:3000])
    _tone(d / "tone.wav", 4)
    _ffmpeg("-i", str(d / "tone.wav"), "-b:a", "32k", str(d / "full.mp3"))
    full = (d / "full.mp3").read_bytes()
    (d / "truncated.mp3").write_bytes(full[: len(full) // 2])
    (d / "empty.wav").write_bytes(b"")
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=96x72:rate=25:duration=2",
        "-pix_fmt", "yuv420p", str(d / "noaudio.mp4"),
    )  # fmt: skip
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3", str(d / "silence.wav"))
    (d / "blank.txt").write_text("  \n\t \n", encoding="utf-8")
    (d / "empty.txt").write_bytes(b"")
    (d / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    return d


def _outputs(tmp: Path) -> tuple[Path, Path, Path]:
    return tmp / "out" / "audio.wav", tmp / "out" / "media.json", tmp / "out" / "transcript.json"


def _assert_nothing_written(tmp: Path) -> None:
    out = tmp / "out"
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert left == [], f"a failed stage left files behind: {left}"


# --- media ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("corrupt.mp4", "Invalid data found"),
        ("truncated.mp3", "truncated or corrupt audio: it declares 4."),
        ("empty.wav", "Invalid data found"),
    ],
)
def test_unreadable_media_fail_naming_file(bad: Path, tmp_path: Path, name: str, problem: str):
    wav, media, _ = _outputs(tmp_path)
    with pytest.raises(TribeInputError) as info:
        run_extract_audio(bad / name, wav, media)
    message = str(info.value)
    assert str(bad / name) in message and problem in message
    assert info.value.stimulus == Path(name).stem
    _assert_nothing_written(tmp_path)


def test_whole_mp3_is_not_called_truncated(bad: Path, tmp_path: Path) -> None:
    wav, media, _ = _outputs(tmp_path)
    run_extract_audio(bad / "full.mp3", wav, media)
    assert json.loads(media.read_text())["duration_s"] == pytest.approx(4.0, abs=0.15)


def test_zero_length_file_stops_discovery(bad: Path, tmp_path: Path) -> None:
    (tmp_path / "ok.wav").write_bytes((bad / "tone.wav").read_bytes())
    (tmp_path / "nothing.mp4").write_bytes(b"")
    with pytest.raises(TribeInputError, match=r"nothing\.mp4.*file is empty \(0 bytes\)"):
        discover_stimuli(tmp_path)


def test_video_without_audio_is_not_an_error(bad: Path, tmp_path: Path, demo_models: Path) -> None:
    wav, media, _ = _outputs(tmp_path)
    run_extract_audio(bad / "noaudio.mp4", wav, media)
    info = json.loads(media.read_text())
    assert (info["has_audio"], info["has_video"]) == (False, True)
    with wave.open(str(wav)) as handle:
        assert handle.getnframes() == 0 and handle.getframerate() == 16000
    store = tmp_path / "audio.zarr"
    run_extract_features(
        "audio", wav, media, store, checkpoint=str(demo_models / "tribe"),
        model_override=None, device="cpu", dtype="float32", batch_size=4, stimulus="noaudio",
    )  # fmt: skip
    features, attrs = read_feature_store(store)
    assert features is None and attrs["present"] is False


def test_silent_audio_has_no_words_and_no_text_features(
    bad: Path, tmp_path: Path, demo_models: Path
) -> None:
    # What whisperX returns on silence (its VAD finds no speech): no segments.
    # The full whisperX path on this file is exercised by the slow test below.
    wav, media, transcript = _outputs(tmp_path)
    run_extract_audio(bad / "silence.wav", wav, media)
    transcript.write_text(json.dumps({"language": "en", "source": "whisperx", "segments": []}))
    events = tmp_path / "events.tsv"
    run_annotate_words(transcript, media, events)
    rows = events.read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("Audio\t0.0")
    store = tmp_path / "text.zarr"
    run_extract_features(
        "text", events, media, store, checkpoint=str(demo_models / "tribe"),
        model_override=None, device="cpu", dtype="float32", batch_size=4, stimulus="silence",
    )  # fmt: skip
    assert read_feature_store(store)[0] is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("empty.txt", "text stimulus is empty"),
        ("blank.txt", "text stimulus is empty"),
        ("latin1.txt", "not valid UTF-8"),
    ],
)
def test_bad_text_fails_naming_file(bad: Path, tmp_path: Path, name: str, problem: str) -> None:
    wav, media, transcript = _outputs(tmp_path)
    with pytest.raises(TribeInputError) as info:
        run_synthesize_speech(bad / name, wav, media, transcript, language="en")
    assert str(bad / name) in str(info.value) and problem in str(info.value)
    _assert_nothing_written(tmp_path)


# --- discovery and names ----------------------------------------------------------------


def test_names_with_spaces_quotes_unicode_and_metacharacters_are_accepted(
    bad: Path, tmp_path: Path
) -> None:
    shutil.copy(bad / "tone.wav", tmp_path / f"{WEIRD_NAME}.wav")
    shutil.copy(bad / "tone.wav", tmp_path / "über ∞ 東京.wav")
    assert set(discover_stimuli(tmp_path)) == {WEIRD_NAME, "über ∞ 東京"}
    wav, media, _ = _outputs(tmp_path)
    run_extract_audio(tmp_path / f"{WEIRD_NAME}.wav", wav, media)  # ffmpeg gets argv, no shell
    assert json.loads(media.read_text())["source"].endswith(f"{WEIRD_NAME}.wav")
    assert not (Path.cwd() / "PWNED").exists()


@pytest.mark.parametrize(
    ("stimulus", "problem"),
    [
        ("..", "starts with '.'"),
        ("../x", "path separator"),
        ("a/../../etc", "path separator"),
        (".hidden", "starts with '.'"),
        ("  ", "empty"),
        ("br{a}ce", "wildcards"),
        ("new\\nline", "path separator"),
    ],
)
def test_sample_sheet_names_cannot_escape_results(
    bad: Path, tmp_path: Path, stimulus: str, problem: str
) -> None:
    shutil.copy(bad / "tone.wav", tmp_path / "tone.wav")
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"stimulus\tpath\n{stimulus}\ttone.wav\n", encoding="utf-8")
    with pytest.raises(TribeInputError, match="invalid stimulus name") as info:
        discover_stimuli(sheet)
    assert problem in str(info.value) and str(tmp_path / "tone.wav") in str(info.value)


def test_folder_name_with_braces_or_control_characters(bad: Path, tmp_path: Path) -> None:
    shutil.copy(bad / "tone.wav", tmp_path / "a{stimulus}.wav")
    with pytest.raises(TribeInputError, match="wildcards"):
        discover_stimuli(tmp_path)
    (tmp_path / "a{stimulus}.wav").rename(tmp_path / "tab\there.wav")
    with pytest.raises(TribeInputError, match="control character"):
        discover_stimuli(tmp_path)


# --- feature stores, checkpoints ----------------------------------------------------------


def test_feature_store_from_another_model_is_stale(
    bad: Path, tmp_path: Path, demo_models: Path
) -> None:
    """A store's attrs name the model and settings: another checkpoint's spec does not match."""
    from tribe_core import features as feat

    wav, media, _ = _outputs(tmp_path)
    run_extract_audio(bad / "tone.wav", wav, media)
    store = tmp_path / "audio.zarr"
    kwargs = dict(model_override=None, device="cpu", dtype="float32", batch_size=4)
    run_extract_features(
        "audio", wav, media, store, checkpoint=str(demo_models / "tribe"), **kwargs
    )
    duration = json.loads(media.read_text())["duration_s"]

    def expected(checkpoint: Path, **overrides: object) -> dict:
        config, build = checkpoint_meta(str(checkpoint))
        specs = feat.feature_specs_from_config(config, build["feature_dims"], {"audio": overrides})
        return feat.feature_store_attrs(specs["audio"], duration)

    assert store_matches(store, expected(demo_models / "tribe"))
    assert not store_matches(store, expected(demo_models / "tribe", dtype="bfloat16"))
    other = tmp_path / "other_w2v"
    shutil.copytree(demo_models / "w2vbert", other)
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "layer_norm_eps": 1e-6}))
    assert not store_matches(store, expected(demo_models / "tribe", model=str(other)))


def test_feature_dims_of_another_checkpoint_fail_before_inference(
    bad: Path, tmp_path: Path, demo_models: Path
) -> None:
    """Stores made for one checkpoint, predicted with another of other dims: a clear error."""
    wav, media, _ = _outputs(tmp_path)
    run_extract_audio(bad / "tone.wav", wav, media)
    mini = demo_models / "tribe_mini"
    dims = checkpoint_meta(str(demo_models / "tribe"))[1]["feature_dims"]
    if checkpoint_meta(str(mini))[1]["feature_dims"] == dims:
        pytest.skip("tribe_mini has the same feature dims as tribe")
    store = tmp_path / "audio.zarr"
    run_extract_features(
        "audio", wav, media, store, checkpoint=str(demo_models / "tribe"),
        model_override=None, device="cpu", dtype="float32", batch_size=4,
    )  # fmt: skip
    events = tmp_path / "events.tsv"
    transcript = tmp_path / "t.json"
    transcript.write_text(json.dumps({"language": "en", "source": "none", "segments": []}))
    run_annotate_words(transcript, media, events)
    out = tmp_path / "predictions.zarr"
    with pytest.raises((TribeInputError, TribeConfigError)) as info:
        settings = PredictSettings(
            checkpoint=str(mini), device="cpu", precision="fp32", batch_size=2,
            duration_trs=_n_timesteps(mini), overlap_trs=0, compile=False,
        )  # fmt: skip
        run_predict({"audio": store}, events, media, out, settings, stimulus="tone")
    assert "audio" in str(info.value) and "tone" in str(info.value)
    assert not out.exists()


def _n_timesteps(checkpoint: Path) -> int:
    return int(checkpoint_meta(str(checkpoint))[1]["n_output_timesteps"])


# --- the workflow: config and discovery stop the run before any job ------------------------


@pytest.fixture(scope="module")
def dry_dir(tmp_path_factory: pytest.TempPathFactory, demo_models: Path, bad: Path) -> Path:
    """A clean repository copy whose stimuli are one short tone; variants get their own folder."""
    stimuli = tmp_path_factory.mktemp("stimuli")
    shutil.copy(bad / "tone.wav", stimuli / "tone.wav")
    return make_workdir(tmp_path_factory.mktemp("dry") / "tribeflow", demo_models, stimuli)


def _dry_run(workdir: Path, configfile: str = "test_config.yaml", *args: str):
    return subprocess.run(
        [SNAKEMAKE, "--configfile", configfile, "--dry-run", "--cores", "1", *args],
        cwd=workdir, capture_output=True, text=True,
    )  # fmt: skip


def _config(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "test_config.yaml").read_text())


def test_config_failing_the_schema_names_the_key(dry_dir: Path) -> None:
    config = _config(dry_dir)
    config["predict"]["batch_size"] = "eight"
    (dry_dir / "bad_schema.yaml").write_text(yaml.safe_dump(config))
    proc = _dry_run(dry_dir, "bad_schema.yaml")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "batch_size" in out and "'eight'" in out, out[-3000:]
    assert not (dry_dir / "results").exists()


def test_config_with_python_tag_is_refused(dry_dir: Path) -> None:
    marker = dry_dir / "PWNED"
    text = (dry_dir / "test_config.yaml").read_text()
    text += f"evil: !!python/object/apply:os.system ['touch {marker}']\n"
    (dry_dir / "tagged.yaml").write_text(text)
    proc = _dry_run(dry_dir, "tagged.yaml")
    # Snakemake loads config files with a safe loader: refused, nothing executed. Its
    # message does not name the tag (Snakemake's wording, see docs/reliability.md).
    assert proc.returncode != 0
    assert "Config file is not valid JSON or YAML" in proc.stdout + proc.stderr
    assert not marker.exists() and not (dry_dir / "results").exists()


@pytest.mark.parametrize("case", ["same stem", "unsupported suffix", "symlink loop", "empty"])
def test_bad_stimulus_folder_stops_before_any_job(dry_dir: Path, bad: Path, case: str) -> None:
    folder = dry_dir / f"stimuli_{case.replace(' ', '_')}"
    folder.mkdir()
    shutil.copy(bad / "tone.wav", folder / "tone.wav")
    culprit = {
        "same stem": "tone.mp3",
        "unsupported suffix": "notes.docx",
        "symlink loop": "loop.wav",
        "empty": "void.mp4",
    }[case]
    if case == "symlink loop":
        (folder / culprit).symlink_to(folder / "loop2.wav")
        (folder / "loop2.wav").symlink_to(folder / culprit)
    elif case == "empty":
        (folder / culprit).write_bytes(b"")
    else:
        shutil.copy(bad / "full.mp3", folder / culprit)
    proc = _dry_run(dry_dir, "test_config.yaml", "--config", f"stimuli={folder.name}")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "TribeInputError" in out and culprit in out, out[-3000:]
    assert "Job stats" not in out and not (dry_dir / "results").exists()


def _several_bad(dry_dir: Path, bad: Path) -> tuple[Path, dict[str, str]]:
    folder = dry_dir / "stimuli_several_bad"
    if not folder.exists():
        folder.mkdir()
        shutil.copy(bad / "tone.wav", folder / "tone.wav")
        shutil.copy(bad / "full.mp3", folder / "notes.docx")
        (folder / "void.mp4").write_bytes(b"")
        (folder / "gone.wav").symlink_to(folder / "nowhere.wav")
        (folder / "extra").mkdir()
        (folder / "README.md").write_text("my stimuli\n")
    return folder, {
        "notes.docx": "unsupported suffix '.docx'",
        "void.mp4": "file is empty (0 bytes)",
        "gone.wav": "broken or looping symlink",
    }


def test_every_bad_stimulus_is_listed_before_any_job(dry_dir: Path, bad: Path) -> None:
    folder, problems = _several_bad(dry_dir, bad)
    proc = _dry_run(dry_dir, "test_config.yaml", "--config", f"stimuli={folder.name}")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and out.count("TribeInputError") == 1, out[-3000:]
    assert "3 bad stimulus file(s)" in out
    for name, problem in problems.items():  # paths as the config gives them (relative)
        assert f"{str(Path(folder.name) / name)!r}: {problem}" in out, out[-3000:]
    assert "Job stats" not in out and not (dry_dir / "results").exists()


def test_on_error_skip_plans_the_good_stimuli_and_names_the_skipped(
    dry_dir: Path, bad: Path
) -> None:
    folder, problems = _several_bad(dry_dir, bad)
    config = _config(dry_dir)
    config["stimuli"] = {"source": folder.name, "on_error": "skip"}
    (dry_dir / "skip.yaml").write_text(yaml.safe_dump(config))
    proc = _dry_run(dry_dir, "skip.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = set(re.findall(r"wildcards: stimulus=(.+)$", proc.stdout, re.M))
    assert planned == {"tone"}
    assert "WARNING: stimuli: skipped 3 bad file(s) (on_error: skip)" in proc.stderr
    for name, problem in problems.items():
        assert f"{str(Path(folder.name) / name)!r}: {problem}" in proc.stderr
    assert f"stimuli: in {folder.name!r}, not stimuli: 2 ignored (README.md, extra/)" in proc.stderr
    assert not (dry_dir / "results").exists()


def test_missing_stimuli_folder_says_it_does_not_exist(dry_dir: Path) -> None:
    proc = _dry_run(dry_dir, "test_config.yaml", "--config", "stimuli=stimuly")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "file 'stimuly': the stimuli folder or sample sheet does not exist" in out, out[-3000:]


def test_misspelt_config_key_is_one_line_not_the_schema(dry_dir: Path) -> None:
    config = _config(dry_dir)
    config["predict"]["batchsize"] = config["predict"].pop("batch_size")
    (dry_dir / "typo.yaml").write_text(yaml.safe_dump(config))
    proc = _dry_run(dry_dir, "typo.yaml")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    lines = [x for x in out.splitlines() if "unknown key" in x]
    assert lines == [
        "config: unknown key 'predict.batchsize' (did you mean 'predict.batch_size'?); "
        "allowed keys in 'predict': device, precision, batch_size, duration_trs, overlap_trs, "
        "compile"
    ], out[-3000:]
    # not Snakemake's validate output, which prints the whole schema
    assert "Failed validating" not in out and "additionalProperties" not in out
    assert len(out.splitlines()) < 12, out
    assert not (dry_dir / "results").exists()


@pytest.mark.parametrize("case", ["missing dir", "no weights", "hub id not cached"])
def test_missing_checkpoint_fails_the_dry_run(dry_dir: Path, demo_models: Path, case: str) -> None:
    partial = dry_dir / "partial_tribe"
    if not partial.exists():
        partial.mkdir()
        shutil.copy(demo_models / "tribe" / "config.yaml", partial / "config.yaml")
    checkpoint, message = {
        "missing dir": (
            str(dry_dir / "models" / "tribe"),
            f"config key `checkpoint`: {str(dry_dir / 'models' / 'tribe')!r} does not exist",
        ),
        "no weights": (
            str(partial),
            f"config key `checkpoint`: {str(partial)!r} lacks best.ckpt (or model.safetensors)",
        ),
        "hub id not cached": (
            "nobody/tribev2-absent",
            "config key `checkpoint`: 'nobody/tribev2-absent' is no local directory, and as a "
            "hub id it is not in the Hugging Face cache (HF_HUB_OFFLINE is set)",
        ),
    }[case]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(dry_dir / "empty_hub")}
    proc = subprocess.run(
        [SNAKEMAKE, "--configfile", "test_config.yaml", "--dry-run", "--cores", "1",
         "--config", f"checkpoint={checkpoint}"],
        cwd=dry_dir, capture_output=True, text=True, env=env,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "TribeConfigError" in out and message in out, out[-3000:]
    assert "Job stats" not in out and not (dry_dir / "results").exists()


def _sparse_wav(path: Path, seconds: int, rate: int = 16000) -> None:
    """A valid PCM16 WAV of ``seconds`` that takes no disk (a sparse file of zeros)."""
    n_bytes = seconds * rate * 2
    header = b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", n_bytes)
    with path.open("wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + n_bytes)


def test_ten_hour_stimulus_is_planned_not_run(dry_dir: Path, demo_models: Path) -> None:
    from tribe_core.media import probe_media
    from tribe_core.planning import plan_stimulus

    folder = dry_dir / "stimuli_long"
    folder.mkdir()
    _sparse_wav(folder / "ten_hours.wav", 10 * 3600)
    jobs = planned_jobs(dry_dir, "--config", f"stimuli={folder.name}")
    assert jobs["extract_audio"] == {"ten_hours"} and jobs["predict"] == {"ten_hours"}
    assert not (dry_dir / "results").exists()

    duration = probe_media(folder / "ten_hours.wav").duration_s
    assert duration == pytest.approx(36000.0)
    released = {"text": (2, 3072), "audio": (2, 1024), "video": (2, 1408)}
    plan = plan_stimulus(duration, feature_dims=released)
    assert (plan["n_trs"], plan["n_segments"], plan["feature_steps"]) == (36000, 360, 72000)
    assert plan["features"]["text"]["shape"] == [2, 3072, 72000]
    assert plan["features"]["text"]["bytes"] == 2 * 3072 * 72000 * 4  # 1.77 GB
    assert plan["features"]["audio"]["n_chunks"] == 282  # 256-step Zarr chunks
    assert plan["predictions"]["bytes"] == 36000 * 20484 * 4  # 2.95 GB
    assert plan["audio_wav_bytes"] == 44 + 36000 * 16000 * 2
    # One forward of 8 segments: inputs [8, L, D, 200] per modality + outputs [8, V, 100].
    per_segment = sum(l_ * d * 200 * 4 for l_, d in released.values()) + 100 * 20484 * 4
    assert plan["encoder_batch_bytes"] == 8 * per_segment
    # predict holds every feature, every segment's output and the kept rows at once.
    assert plan["predict_peak_bytes"] > 8e9
    demo = plan_stimulus(
        duration, feature_dims=checkpoint_meta(str(demo_models / "tribe"))[1]["feature_dims"]
    )
    assert demo["n_segments"] == 360 and demo["predict_peak_bytes"] < plan["predict_peak_bytes"]


def test_plan_edges() -> None:
    from tribe_core.planning import plan_stimulus

    dims = {"audio": (2, 8)}
    short = plan_stimulus(0.4, feature_dims=dims)
    assert (short["n_trs"], short["n_segments"], short["feature_steps"]) == (1, 1, 1)
    overlap = plan_stimulus(250, feature_dims=dims, overlap_trs=50)
    assert overlap["n_segments"] == 4  # starts 0, 50, 100, 150
    with pytest.raises(ValueError, match="duration_s"):
        plan_stimulus(float("nan"), feature_dims=dims)


# --- a real run: odd names, other stimuli untouched, stale stores recomputed ----------------


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "logs" not in p.parts and "benchmarks" not in p.parts
    }


@pytest.mark.slow
def test_real_run_odd_name_bad_neighbour_and_stale_features(
    tmp_path: Path, demo_models: Path, demo_stimuli: Path, bad: Path
) -> None:
    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    shutil.copy(demo_stimuli / "story.txt", stimuli / f"{WEIRD_NAME}.txt")
    workdir = make_workdir(tmp_path / "tribeflow", demo_models, stimuli)
    snakemake(workdir, "--cores", "2")
    base = workdir / "results" / WEIRD_NAME
    from tribe_core.segments import read_predictions

    predictions = read_predictions(base / "predictions.zarr").predictions
    assert predictions.shape[1] == 20484 and np.isfinite(predictions).all()
    assert (base / "nifti" / "predictions.nii.gz").is_file()
    assert not (workdir / "PWNED").exists() and not Path("PWNED").exists()
    before = _digest(base)

    # A truncated neighbour fails alone (--keep-going), naming the file; nothing else changes.
    shutil.copy(bad / "truncated.mp3", workdir / "stimuli" / "truncated.mp3")
    proc = snakemake(workdir, "--cores", "2", "--keep-going", check=False)
    assert proc.returncode != 0
    # The traceback reaches Snakemake's output (the rule log only has log records).
    out = proc.stdout + proc.stderr
    assert "truncated or corrupt audio" in out and "truncated.mp3" in out
    assert not (workdir / "results" / "truncated" / "audio.wav").exists()
    assert _digest(base) == before
    (workdir / "stimuli" / "truncated.mp3").unlink()

    # Another checkpoint: its feature stores are stale and are recomputed, then predicted.
    jobs = planned_jobs(workdir, "--config", f"checkpoint={demo_models / 'tribe_mini'}")
    assert {"extract_text_features", "extract_audio_features", "predict"} <= set(jobs)
    assert jobs["extract_audio_features"] == {WEIRD_NAME}


@pytest.mark.slow
def test_silent_audio_through_whisperx_gives_no_words(
    bad: Path, tmp_path: Path, demo_models: Path
) -> None:
    from tribe_core.stages import run_transcribe

    wav, media, transcript = _outputs(tmp_path)
    run_extract_audio(bad / "silence.wav", wav, media)
    run_transcribe(
        wav, media, transcript, sidecar=None, model=str(demo_models / "whisper" / "asr"),
        language="en", device="cpu", compute_type="int8", batch_size=4,
        align_model=str(demo_models / "whisper" / "align"),
    )  # fmt: skip
    assert json.loads(transcript.read_text())["segments"] == []


@pytest.mark.slow  # a workflow run of one stimulus: about 60 s on a 2-core box
def test_per_modality_dtype_reaches_its_store_only(dry_dir: Path) -> None:
    """features.dtype {audio: bfloat16}: the audio job computes in bf16, text stays fp32;
    an unknown modality key fails the schema, naming it."""
    config = _config(dry_dir)
    config["features"]["dtype"] = {"audio": "bfloat16", "speech": "float16"}
    (dry_dir / "bad_dtype.yaml").write_text(yaml.safe_dump(config))
    proc = _dry_run(dry_dir, "bad_dtype.yaml")
    assert proc.returncode != 0 and "speech" in proc.stdout + proc.stderr
    config["features"]["dtype"] = {"audio": "bfloat16"}
    (dry_dir / "audio_bf16.yaml").write_text(yaml.safe_dump(config))
    try:
        snakemake(
            dry_dir, "--configfile", "audio_bf16.yaml", "--cores", "1",
            "results/tone/features/audio.zarr", "results/tone/features/text.zarr",
        )  # fmt: skip
        audio, audio_attrs = read_feature_store(dry_dir / "results/tone/features/audio.zarr")
        _, text_attrs = read_feature_store(dry_dir / "results/tone/features/text.zarr")
        assert audio is not None and audio_attrs["compute_dtype"] == "bfloat16"
        assert text_attrs["compute_dtype"] == "float32"
    finally:
        shutil.rmtree(dry_dir / "results", ignore_errors=True)
