"""The whole workflow on one synthetic film, measured stage by stage.

``python benchmarks/end_to_end.py --size full --minutes 60 --out OUT_DIR``

1. builds the models with random weights, nothing downloaded: ``full`` the
   released architectures (Llama-3.2-3B, w2v-BERT 2.0, V-JEPA2 ViT-G from
   ``benchmarks/features.py``, a TRIBE v2 encoder at the released
   dims), ``tiny`` the demo ones (:mod:`tribe_core.demo_models`);
2. makes the film and its word sidecar (``make_film.py``), which the
   workflow reads instead of running the speech recogniser; with
   ``--transcription alongside`` (default on CUDA) the recogniser's model work
   for the whole film (``benchmarks/transcription.py``: a large-v3-sized Whisper
   and the word aligner) runs on the same GPU from the workflow's start, so the
   feature stages share the GPU with it, and the report gives the time the
   hour would take had text features waited for it (:func:`with_transcription`);
3. runs the real workflow (``snakemake --cores N --resources gpu=K`` with
   ``gpu_jobs_per_device: K``: up to K model stages share the one GPU, so
   text and audio features run beside video instead of after it; greedy
   scheduler; on a fresh copy of the repository) while a thread samples
   GPU 0 through NVML; each stage's
   interval, peak RSS and CUDA peak come from the ``stage resources`` line
   its process writes to its rule log (:mod:`tribe_core.logs`), its GPU busy
   fraction and NVML memory from the samples inside that interval
   (concurrent stages see the same samples);
4. times the reference-equivalent path of each model stage on a sample in
   the same process (float32, the reference's batching, per-clip frame
   seeking for video, one context per word for text; see
   ``benchmarks/features.py``) and extrapolates it to the film;
5. with ``--kernel-floor`` (default on CUDA), times the bare kernels a clip
   and a word cannot do without (``clip_floor.py``, ``text_floor.py``) and
   multiplies them by the film's clips and sliding-window words: the GPU time
   no implementation of the same maths at the same dtypes avoids;
6. prints a table and writes ``end_to_end.json`` (after every phase),
   ``table.txt`` and ``snakemake.log`` to ``--out``.

The movie's frames are drawn by ``--movie-threads`` processes (Snakemake's
``--set-threads plots=N``; default: the cores less four, which the NIfTI and
ROI stages take beside it).

A GPU node may lack ``ffprobe`` (and ``ffmpeg``, which ``benchmarks/gpu_wheels.sh``
can carry along): stand-ins the PATH lacks are put first on the workflow's PATH,
``ffmpeg`` linking to :func:`tribe_core.features.video.ffmpeg_binary` and ``ffprobe``
answering the JSON queries of ``ffmpeg.probe`` and
:func:`tribe_core.features.video.probe_video` from ``ffmpeg -i``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GPU_STAGES = (
    "extract_text_features",
    "extract_audio_features",
    "extract_video_features",
    "predict",
)
ENCODER_ARCH = {
    "full": {"hidden": 1152, "depth": 8, "heads": 8, "low_rank_head": 2048},  # the release
    "tiny": {"hidden": 96, "depth": 1, "heads": 2, "low_rank_head": 8},  # the demo's
}
MODEL_DIRS = {"text": "llama", "audio": "w2vbert", "video": "vjepa2"}
# The workflow runs in a fresh copy: hidden folders (.git, .venv, .gpu_carry, .snakemake),
# outputs and tests stay behind.
COPY_IGNORE = shutil.ignore_patterns(
    ".*", "results", "demo_models", "demo_stimuli", "benchmarks", "tests", "__pycache__",
    "*.egg-info", "logs", "build",
)  # fmt: skip


# --- models -------------------------------------------------------------------------------


def _save_full_model(modality: str, out_dir: Path, device: str) -> Path:
    """One released-size feature model with random weights, ``save_pretrained`` layout."""
    import torch

    from benchmarks import features as bench
    from tribe_core.io.atomic import atomic_path

    build = {
        "text": lambda: bench._text_model("full", "llama-3.2-3b"),
        "audio": lambda: bench._audio_model("full"),
        "video": lambda: bench._video_model("full", "vitg"),
    }[modality]
    # Stored as on the hub: Llama-3.2-3B in bf16, w2v-BERT 2.0 and V-JEPA2 in fp32.
    dtype = torch.bfloat16 if modality == "text" else torch.float32
    with torch.device(device):  # random init on the GPU: seconds instead of minutes
        model, preprocessor = build()
    model.to(device="cpu", dtype=dtype)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        preprocessor.save_pretrained(tmp)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out_dir


def build_models(size: str, out_dir: Path, device: str) -> dict[str, str]:
    """Feature models and a TRIBE v2 checkpoint naming them; reused if already built."""
    manifest = out_dir / "manifest.json"
    if manifest.exists():
        return json.loads(manifest.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    if size == "tiny":
        from tribe_core.demo_models.audio import build_tiny_w2vbert
        from tribe_core.demo_models.text import build_tiny_llama
        from tribe_core.demo_models.video import build_tiny_vjepa2

        builders = {
            "text": build_tiny_llama,
            "audio": build_tiny_w2vbert,
            "video": build_tiny_vjepa2,
        }
        models = {m: b(out_dir / MODEL_DIRS[m]) for m, b in builders.items()}
    else:
        models = {m: _save_full_model(m, out_dir / d, device) for m, d in MODEL_DIRS.items()}
    tribe = tribe_checkpoint(out_dir / "tribe", models, ENCODER_ARCH[size])
    built = {**{m: str(p) for m, p in models.items()}, "tribe": str(tribe)}
    manifest.write_text(json.dumps(built, indent=2) + "\n")
    return built


def tribe_checkpoint(out_dir: Path, models: dict[str, Path], arch: dict[str, int]) -> Path:
    """A random TRIBE v2 checkpoint whose config names ``models``.

    Layers 0.5, 0.75 and 1.0 of each model, kept apart: 3 layer groups, the
    released ``feature_dims`` layout (text (3, 3072), audio (3, 1024), video
    (3, 1408): 179,318,933 parameters at the released size).
    """
    from tribe_core.demo_models.tribe import RELEASED_LAYERS, build_tribe_checkpoint

    return build_tribe_checkpoint(out_dir, models, RELEASED_LAYERS, None, **arch)


# --- ffmpeg stand-ins ---------------------------------------------------------------------


def ffprobe_main(argv: list[str]) -> int:
    """``ffprobe [-select_streams v:0] ... -of json FILE`` answered from ``ffmpeg -i FILE``.

    Gives what ``ffmpeg.probe`` and :func:`tribe_core.features.video.probe_video`
    read: stream types, the first video stream's size and rate, the duration.
    """
    from tribe_core.features.video import _probe_with_ffmpeg, ffmpeg_binary

    target = argv[-1]
    proc = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", target],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", proc.stderr)
    kinds = re.findall(r"Stream #\S+: (Video|Audio):(.*)", proc.stderr)
    if duration is None or not kinds:
        sys.stderr.write(proc.stderr)
        return 1
    video = _probe_with_ffmpeg(Path(target)) if any(k == "Video" for k, _ in kinds) else {}
    streams = [
        {"codec_type": kind.lower(), "disposition": {"attached_pic": int("attached pic" in rest)},
         **(video if kind == "Video" else {})}
        for kind, rest in kinds
        if "-select_streams" not in argv or kind == "Video"
    ]  # fmt: skip
    h, m, sec = duration.groups()
    seconds = int(h) * 3600 + int(m) * 60 + float(sec)
    print(json.dumps({"streams": streams, "format": {"duration": f"{seconds:.6f}"}}))
    return 0


def ffmpeg_shims(folder: Path, mode: str) -> Path | None:
    """A folder with ``ffmpeg``/``ffprobe`` stand-ins for the ones PATH lacks (or all)."""
    from tribe_core.features.video import ffmpeg_binary

    missing = [p for p in ("ffmpeg", "ffprobe") if mode == "always" or not shutil.which(p)]
    if mode == "never" or not missing:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    if "ffmpeg" in missing:
        (folder / "ffmpeg").unlink(missing_ok=True)
        (folder / "ffmpeg").symlink_to(ffmpeg_binary())
    if "ffprobe" in missing:
        shim = folder / "ffprobe"
        shim.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from end_to_end import ffprobe_main\nsys.exit(ffprobe_main(sys.argv[1:]))\n"
        )
        shim.chmod(0o755)
    return folder


# --- sampling -----------------------------------------------------------------------------


class GpuSampler:
    """Samples GPU 0 through NVML in a thread: ``(time, busy %, memory used MiB)``."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, float, float]] = []
        self._device = _nvml_device()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def read(self) -> tuple[float, float, float] | None:
        """One reading, or ``None`` without NVML."""
        if self._device is None:
            return None
        import pynvml

        util = pynvml.nvmlDeviceGetUtilizationRates(self._device)
        memory = pynvml.nvmlDeviceGetMemoryInfo(self._device)
        return time.time(), float(util.gpu), memory.used / 2**20

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if (reading := self.read()) is not None:
                self.samples.append(reading)
            self._stop.wait(self.interval_s)


def _nvml_device() -> Any:
    """NVML handle of GPU 0, or ``None`` (no nvidia-ml-py, no driver, no GPU)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception:  # noqa: BLE001 - ImportError or any NVMLError: sample no GPU
        return None


def gpu_stats(
    samples: list[tuple[float, float, float]], start: float, end: float, idle_mb: float
) -> dict[str, Any]:
    """GPU busy fraction and peak memory above ``idle_mb`` of the samples in ``[start, end]``."""
    inside = [s for s in samples if start <= s[0] <= end]
    if not inside:
        return {"gpu_busy_fraction": None, "gpu_mem_peak_mb": None, "gpu_samples": 0}
    return {
        "gpu_busy_fraction": round(sum(s[1] for s in inside) / len(inside) / 100.0, 3),
        "gpu_mem_peak_mb": round(max(s[2] for s in inside) - idle_mb, 1),
        "gpu_samples": len(inside),
    }


# --- the workflow run ---------------------------------------------------------------------


def snakemake_command() -> list[str]:
    """``python -m snakemake`` where it imports, else the ``snakemake`` on PATH."""
    import importlib.util

    if importlib.util.find_spec("snakemake") is not None:
        return [sys.executable, "-m", "snakemake"]
    found = shutil.which("snakemake")
    if found is None:
        raise SystemExit("snakemake is neither importable nor on PATH")
    return [found]


def workflow_config(args: argparse.Namespace, models: dict[str, str], sheet: Path) -> dict:
    """The run's config (merged by Snakemake over ``config/config.yaml``)."""
    gpu = {"gpu": 1}
    return {
        "stimuli": str(sheet),
        "results_dir": "results",
        "checkpoint": models["tribe"],
        "feature_models": {"text": None, "audio": None, "video": None},
        "transcription": {"device": "cpu", "use_sidecar": True},  # the sidecar is read
        "features": {
            "device": args.device,
            "dtype": {
                "text": args.text_dtype or args.dtype,
                "audio": args.dtype,
                "video": args.dtype,
            },
            "batch_size": args.batch_size,
            "text_context_stride": args.text_context_stride,
        },
        "predict": {"device": args.device, "precision": args.precision, "batch_size": 8},
        "products": {"atlas_dir": args.atlas_dir, "movie": args.movie},
        "resources": {stage: gpu for stage in GPU_STAGES},
        "gpu_jobs_per_device": args.gpu_jobs,
    }


def run_workflow(
    args: argparse.Namespace, models: dict[str, str], film: dict[str, Any], out: Path
) -> dict[str, Any]:
    """Run Snakemake on a fresh copy of the repository; return the run and its stages.

    Each stage's interval, peak RSS and CUDA peak are the ``stage resources``
    line its process wrote to the rule log (:func:`tribe_core.logs.read_stage_resources`);
    its GPU figures are the NVML samples inside that interval.
    """
    import yaml

    from tribe_core.logs import read_stage_resources

    work = args.work / "workflow"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(REPO, work, ignore=COPY_IGNORE)
    sheet = args.work / "stimuli.tsv"
    sheet.write_text(f"stimulus\tpath\nfilm\t{film['video']}\n")
    (work / "e2e_config.yaml").write_text(yaml.safe_dump(workflow_config(args, models, sheet)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    shims = ffmpeg_shims(args.work / "shims", args.ffmpeg_shims)
    if shims is not None:
        env["PATH"] = f"{shims}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        *snakemake_command(), "--cores", str(args.cores), "--resources", f"gpu={args.gpu_jobs}",
        "--configfile", "e2e_config.yaml", "--scheduler", "greedy",
        "--set-threads", f"plots={movie_threads(args)}",
    ]  # fmt: skip
    asr: dict[str, Any] | None = None
    with GpuSampler(args.sample_interval) as gpu, (out / "snakemake.log").open("w") as log:
        idle = gpu.read()
        idle_mb = idle[2] if idle else 0.0
        start = time.time()
        asr_proc = start_transcription(args, out) if args.transcription == "alongside" else None
        returncode = subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=log).returncode
        end = time.time()
        if asr_proc is not None:
            asr = finish_transcription(asr_proc, start, out)
    results = work / "results" / "film"
    stages = {}
    for path in sorted((results / "logs").glob("*.log")):
        used = read_stage_resources(path)
        if used is None:  # the stage died before writing it
            continue
        stages[path.stem] = {
            "start_s": round(used["start"] - start, 2),
            "wall_s": used["wall_s"],
            "peak_rss_mb": used["peak_rss_mb"],
            "cuda_peak_mb": used["cuda_peak_mb"],
            **gpu_stats(gpu.samples, used["start"], used["start"] + used["wall_s"], idle_mb),
        }
    return {
        "command": cmd,
        "shims": str(shims) if shims else None,
        "returncode": returncode,
        "wall_s": round(end - start, 2),
        "gpu_idle_mem_mb": round(idle_mb, 1),
        **gpu_stats(gpu.samples, start, end, idle_mb),
        "stages": dict(sorted(stages.items(), key=lambda item: item[1]["start_s"])),
        "transcription": asr,
        "results_dir": str(results),
    }


def movie_threads(args: argparse.Namespace) -> int:
    """Processes drawing the movie's frames: ``--movie-threads``, else the cores less four."""
    return args.movie_threads or max(1, args.cores - 4)


def start_transcription(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """``transcription.py`` for the whole film, on the workflow's GPU, in the background.

    A thread waits for it and notes when it ended (:func:`finish_transcription`).
    """
    cmd = [
        sys.executable, str(REPO / "benchmarks" / "transcription.py"), "--size", args.size,
        "--minutes", str(args.minutes), "--device", args.device,
        "--json", str(out / "transcription.json"),
    ]  # fmt: skip
    with (out / "transcription.log").open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    run: dict[str, Any] = {"proc": proc}

    def wait() -> None:
        proc.wait()
        run["end"] = time.time()

    run["thread"] = threading.Thread(target=wait, daemon=True)
    run["thread"].start()
    return run


def finish_transcription(run: dict[str, Any], start: float, out: Path) -> dict[str, Any]:
    """Wait for :func:`start_transcription`'s run; when it ended (s from the workflow's start)."""
    run["thread"].join()
    returncode = run["proc"].returncode
    path = out / "transcription.json"
    measured = json.loads(path.read_text()) if returncode == 0 and path.exists() else {}
    return {"returncode": returncode, "end_s": round(run["end"] - start, 2), "measured": measured}


def with_transcription(workflow: dict[str, Any]) -> dict[str, Any] | None:
    """The workflow's wall time had text features waited for the transcription run beside it.

    Text features start after ``annotate_words``, which here read the sidecar at
    once; with the recogniser they would start when it ends. Their stage would
    then end at ``asr end + annotate_words + extract_text_features`` (the two
    stages' measured walls), and ``predict``, which waits for every feature
    stage, would start that much later if that is after its measured start.
    """
    asr, stages = workflow.get("transcription"), workflow["stages"]
    needed = ("annotate_words", "extract_text_features", "predict")
    if not asr or asr["returncode"] != 0 or not all(n in stages for n in needed):
        return None
    text_end = asr["end_s"] + sum(stages[n]["wall_s"] for n in needed[:2])
    delay = max(0.0, text_end - stages["predict"]["start_s"])
    return {
        "transcription_end_s": asr["end_s"],
        "text_features_end_s": round(text_end, 2),
        "predict_start_s": stages["predict"]["start_s"],
        "wall_s": round(workflow["wall_s"] + delay, 2),
    }


def kernel_floors(args: argparse.Namespace, film: dict[str, Any]) -> dict[str, Any]:
    """GPU seconds of the bare kernels the film's video and text features cannot do without.

    Video: :func:`clip_floor.clip_floor` (bf16, ``--batch-size`` clips) times the
    film's clips (2 per second). Text: :func:`text_floor.layer_ms_per_context`
    (float16, batch 8, a 1,024-word context of 1,229 tokens) over the layers,
    times the words past the first 1,024 (one forward each; the first ones
    share forwards and are left out). Audio and the encoder are left out (one
    forward per 60 s, and a few seconds).
    """
    import torch

    from benchmarks.clip_floor import clip_floor
    from benchmarks.features import TEXT_ARCHS
    from benchmarks.text_floor import layer_ms_per_context

    clips = int(args.minutes * 60 * 2)
    words = int(film.get("n_words") or 0)
    sliding = max(0, words - 1024)
    clip_ms, _ = clip_floor("vitg", args.batch_size)
    arch = TEXT_ARCHS["llama-3.2-3b"]
    with torch.inference_mode():
        layer = layer_ms_per_context(arch, 1229, 8, torch.float16, 10)
    word_ms = sum(layer.values()) * arch["num_hidden_layers"]
    video_s, text_s = clips * clip_ms / 1000, sliding * word_ms / 1000
    return {
        "extract_video_features": {"ms_per_unit": round(clip_ms, 2), "units": clips,
                                   "floor_s": round(video_s, 1)},
        "extract_text_features": {"ms_per_unit": round(word_ms, 2), "units": sliding,
                                  "floor_s": round(text_s, 1)},
        "sum_s": round(video_s + text_s, 1),
    }  # fmt: skip


# --- reference-equivalent samples ---------------------------------------------------------


def reference_samples(args: argparse.Namespace, models: dict[str, str], results: Path) -> dict:
    """Reference-equivalent time of each model stage: load + sample, extrapolated to the film."""
    from tribe_core.encoder import checkpoint_meta
    from tribe_core.features import feature_specs_from_config
    from tribe_core.media import MediaInfo

    info = MediaInfo.read(results / "media.json")
    config, build_args = checkpoint_meta(models["tribe"])

    def spec(modality: str, batch_size: int) -> Any:  # float32, the reference's batch size
        overrides = {
            modality: {"device": args.device, "dtype": "float32", "batch_size": batch_size}
        }
        return feature_specs_from_config(config, build_args["feature_dims"], overrides)[modality]

    refs = {
        "extract_video_features": _reference_video(spec("video", 1), info, args.ref_clips),
        "extract_text_features": _reference_text(spec("text", 4), info, results, args.ref_words),
        "extract_audio_features": _reference_audio(
            spec("audio", 1), info, results / "audio.wav", args.work, args.ref_audio_s
        ),
        "predict": _reference_predict(models["tribe"], info, results, args.device),
    }
    return refs


def _entry(load_s: float, sample_s: float, n_sample: int, n_total: int, unit: str) -> dict:
    """Load time + the sample's time scaled from ``n_sample`` to ``n_total`` units."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()  # the next model gets the memory back
    return {
        "load_s": round(load_s, 2), "sample_s": round(sample_s, 3), "n_sample": n_sample,
        "n_total": n_total, "unit": unit,
        "equiv_s": round(load_s + sample_s / n_sample * n_total, 3),
    }  # fmt: skip


def _reference_video(spec: Any, info: Any, n_clips: int) -> dict:
    """The first clips, each with its frames sought and decoded, batch 1, predictor on."""
    from benchmarks.features import _timed, reference_video_features
    from tribe_core.features import video

    path, fps = Path(info.source), video.probe_video(info.source).fps
    model, load_s = _timed(video.load_video_model, spec)
    sample_len_s = n_clips / spec.frequency_hz
    n_sample = len(list(video.clip_schedule(sample_len_s, fps, spec)))
    n_total = len(list(video.clip_schedule(info.duration_s, fps, spec)))
    reference_video_features(path, spec, 1 / spec.frequency_hz, model)  # warm-up: one clip
    _, sample_s = _timed(reference_video_features, path, spec, sample_len_s, model)
    del model
    return _entry(load_s, sample_s, n_sample, n_total, "clips")


def _reference_text(spec: Any, info: Any, results: Path, n_words: int) -> dict:
    """Words spread over the film, one context (up to 1024 words) per word, 4 per forward."""
    import numpy as np

    from benchmarks.features import _timed
    from tribe_core.events import read_events_tsv
    from tribe_core.features import text

    words = text.select_words(read_events_tsv(results / "events.tsv"), spec.contextualized)
    pick = np.unique(np.linspace(0, len(words) - 1, n_words).round().astype(int))
    sample = words.iloc[pick]
    model, load_s = _timed(text.load_text_model, spec)
    columns = [sample["text"].tolist(), sample["context"].tolist()]
    times = [sample["start"].to_numpy(float), sample["duration"].to_numpy(float)]
    first = [c[:1] for c in columns] + [t[:1] for t in times]
    text.text_features_from_words(*first, spec, info.duration_s, model, False)  # warm-up
    _, sample_s = _timed(
        text.text_features_from_words, *columns, *times, spec, info.duration_s, model, False
    )
    del model
    entry = _entry(load_s, sample_s, len(sample), len(words), "words")
    entry["mean_context_words"] = round(float(sample["context"].str.split().str.len().mean()), 1)
    return entry


def _reference_audio(spec: Any, info: Any, wav: Path, work: Path, seconds: float) -> dict:
    """The first ``seconds`` of the film's WAV, one chunk per forward."""
    from benchmarks.features import _timed
    from tribe_core.features import audio

    part = work / "reference_audio.wav"
    with wave.open(str(wav), "rb") as src, wave.open(str(part), "wb") as dst:
        n_frames = min(int(seconds * src.getframerate()), src.getnframes())
        dst.setparams(src.getparams())
        dst.writeframes(src.readframes(n_frames))
        part_s = n_frames / src.getframerate()
    model, load_s = _timed(audio.load_audio_model, spec)
    audio.extract_audio_features(part, spec, part_s, model)  # warm-up
    _, sample_s = _timed(audio.extract_audio_features, part, spec, part_s, model)
    del model
    return _entry(load_s, sample_s, round(part_s), round(info.duration_s), "seconds")


def _reference_predict(checkpoint: str, info: Any, results: Path, device: str) -> dict:
    """The encoder as the reference runs it (eager fp32, reference maths, batch 8), whole film."""
    from benchmarks.features import _timed
    from tribe_core.encoder import load_encoder
    from tribe_core.events import read_events_tsv
    from tribe_core.io.zarr_store import read_feature_store
    from tribe_core.segments import predict_stimulus

    stores = {m: results / "features" / f"{m}.zarr" for m in MODEL_DIRS}
    features = {m: read_feature_store(p)[0] for m, p in stores.items() if p.exists()}
    events = read_events_tsv(results / "events.tsv")
    encoder, load_s = _timed(load_encoder, checkpoint, device)

    def run() -> Any:
        return predict_stimulus(
            encoder, features, events, precision="fp32", batch_size=8, device=device,
            duration_s=info.duration_s,
        )  # fmt: skip

    run()  # warm-up
    result, sample_s = _timed(run)
    n_segments = int(result.trs.loc[result.trs["segment"] >= 0, "segment"].nunique())
    return _entry(load_s, sample_s, n_segments, n_segments, "segments")


# --- report -------------------------------------------------------------------------------


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report_table(report: dict[str, Any]) -> str:
    """Stages: wall time, GPU busy, memory, reference-equivalent time and its ratio to ours."""
    cols = [("stage", 24), ("wall s", 9), ("GPU busy", 9), ("RSS MB", 8), ("NVML MB", 9),
            ("CUDA MB", 9), ("ref-eq s", 10), ("ratio", 7), ("floor s", 9)]  # fmt: skip
    head = "".join(f"{n:<{w}}" if i == 0 else f"{n:>{w}}" for i, (n, w) in enumerate(cols))
    rule = "-" * len(head)

    floors = report.get("kernel_floor") or {}

    def row(
        name: str, st: dict[str, Any], ref: dict[str, Any], ratio: Any, floor: Any = None
    ) -> str:
        cells = [
            _fmt(st.get("wall_s"), ".1f"), _fmt(st.get("gpu_busy_fraction"), ".0%"),
            _fmt(st.get("peak_rss_mb"), ".0f"), _fmt(st.get("gpu_mem_peak_mb"), ".0f"),
            _fmt(st.get("cuda_peak_mb"), ".0f"), _fmt(ref.get("equiv_s"), ".1f"),
            _fmt(ratio, ".1f"), _fmt(floor, ".1f"),
        ]  # fmt: skip
        return f"{name:<24}" + "".join(
            f"{c:>{w}}" for c, (_, w) in zip(cells, cols[1:], strict=True)
        )

    refs = report.get("reference", {})
    lines = [head, rule]
    for name, st in report["workflow"]["stages"].items():
        floor = floors.get(name, {}).get("floor_s")
        lines.append(row(name, st, refs.get(name, {}), st.get("ratio"), floor))
    total = report.get("total", {})
    whole = {"equiv_s": total.get("reference_equiv_s")}
    workflow = report["workflow"]
    lines += [rule, row("workflow (snakemake)", workflow, whole, total.get("ratio"),
                        floors.get("sum_s"))]  # fmt: skip
    asr = workflow.get("transcription")
    if asr:
        lines.append(
            f"{'transcription alongside':<24}{asr['end_s']:>9.1f}"
            f"  (its end, s from the workflow's start; exit {asr['returncode']})"
        )
    both = report.get("with_transcription")
    if both:
        lines.append(f"{'workflow + transcription':<24}{both['wall_s']:>9.1f}"
                     f"  (text features waiting for it would end at "
                     f"{both['text_features_end_s']:.1f}; predict started at "
                     f"{both['predict_start_s']:.1f})")  # fmt: skip
    lines += [f"{key:<24}{value:>9.1f}" for key, value in report["setup"].items()]
    return "\n".join(lines)


def add_ratios(report: dict[str, Any]) -> None:
    """Per stage ``ratio`` = reference-equivalent / our wall time; the total counts ours
    for the stages without a reference-equivalent path."""
    stages, refs = report["workflow"]["stages"], report.get("reference", {})
    for name, st in stages.items():
        equiv = refs.get(name, {}).get("equiv_s")
        st["ratio"] = round(equiv / st["wall_s"], 3) if equiv and st["wall_s"] > 0 else None
    if refs:
        wall = report["workflow"]["wall_s"]
        saved = sum(refs[n]["equiv_s"] - st["wall_s"] for n, st in stages.items() if n in refs)
        report["total"] = {"reference_equiv_s": round(wall + saved, 1)}
        report["total"]["ratio"] = round((wall + saved) / wall, 2)


def main(argv: list[str] | None = None) -> int:
    import torch

    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--video-size", default="640x360")
    parser.add_argument("--film", type=Path, help="use this film (its .words.tsv beside it)")
    parser.add_argument(
        "--work", type=Path, default=None, help="work folder (default $TMPDIR/tribe-e2e-SIZE)"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--dtype", default="bfloat16" if cuda else "float32")
    parser.add_argument(
        "--text-dtype", default="float16" if cuda else None,
        help="text model dtype (default: --dtype; float16 on CUDA, where bf16 text drifts)",
    )  # fmt: skip
    parser.add_argument(
        "--text-context-stride", type=int, default=1,
        help="features.text_context_stride (1: the reference's outputs)",
    )  # fmt: skip
    parser.add_argument("--precision", default="fp16" if cuda else "fp32")
    parser.add_argument("--batch-size", type=int, default=8, help="feature batch size")
    parser.add_argument(
        "--gpu-jobs", type=int, default=3, help="GPU jobs sharing the GPU (gpu_jobs_per_device)"
    )
    parser.add_argument("--movie", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--movie-threads", type=int, default=None,
        help="processes drawing the movie (Snakemake --set-threads plots=N; default cores - 4)",
    )  # fmt: skip
    parser.add_argument(
        "--transcription", choices=["alongside", "off"], default="alongside" if cuda else "off",
        help="run transcription.py's model work for the film beside the workflow (default on CUDA)",
    )  # fmt: skip
    parser.add_argument(
        "--kernel-floor", action=argparse.BooleanOptionalAction, default=cuda,
        help="time the bare kernels of a clip and a word and scale them to the film (CUDA)",
    )  # fmt: skip
    parser.add_argument(
        "--atlas-dir", default=_default_atlas(),
        help="HCP-MMP1 folder (default: .gpu_carry/atlas if gpu_wheels.sh put one there, "
        "else the workflow's own search: products.atlas_cache, MNE's folders; none: no ROIs)",
    )  # fmt: skip
    parser.add_argument("--ffmpeg-shims", choices=["auto", "always", "never"], default="auto")
    parser.add_argument("--sample-interval", type=float, default=0.2, help="seconds")
    parser.add_argument("--ref-clips", type=int, default=20)
    parser.add_argument("--ref-words", type=int, default=20)
    parser.add_argument("--ref-audio-s", type=float, default=60.0)
    parser.add_argument("--no-reference", dest="reference", action="store_false")
    args = parser.parse_args(argv)
    args.work = (args.work or Path(tempfile.gettempdir()) / f"tribe-e2e-{args.size}").resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)

    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "setup": {}}
    report["environment"] = {
        "python": sys.version.split()[0], "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
    }  # fmt: skip
    json_path = args.out / "end_to_end.json"

    def save() -> None:  # after each phase: a cut-off run still leaves what it measured
        json_path.write_text(json.dumps(report, indent=2) + "\n")

    # Import what both threads use first: two threads importing one module can deadlock.
    import benchmarks.features  # noqa: F401
    import tribe_core.features.video  # noqa: F401

    with ThreadPoolExecutor(1) as pool:  # ffmpeg makes the film while the models are built
        film_job = pool.submit(_timed_s, _film, args)
        models, report["setup"]["build_models_s"] = _timed_s(
            build_models, args.size, args.work / "models", args.device
        )
        report["film"], report["setup"]["make_film_s"] = film_job.result()
    report["models"] = models
    film = report["film"]
    save()
    print(f"[e2e] models and film ready {report['setup']}; running the workflow", flush=True)
    report["workflow"] = run_workflow(args, models, film, args.out)
    save()
    if report["workflow"]["returncode"] != 0:
        print((args.out / "snakemake.log").read_text()[-6000:], file=sys.stderr)
        print(f"snakemake failed ({report['workflow']['returncode']})", file=sys.stderr)
        return 1
    print(f"[e2e] workflow done in {report['workflow']['wall_s']} s", flush=True)
    report["with_transcription"] = with_transcription(report["workflow"])
    if args.kernel_floor:
        report["kernel_floor"], report["setup"]["kernel_floor_s"] = _timed_s(
            kernel_floors, args, film
        )
        save()
    if args.reference:
        t0 = time.perf_counter()
        report["reference"] = reference_samples(
            args, models, Path(report["workflow"]["results_dir"])
        )
        report["setup"]["reference_samples_s"] = round(time.perf_counter() - t0, 1)
    add_ratios(report)
    save()
    table = report_table(report)
    (args.out / "table.txt").write_text(table + "\n")
    print(table)
    return 0


def _timed_s(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(*args), round(time.perf_counter() - start, 1)


def _film(args: argparse.Namespace) -> dict[str, Any]:
    """The given film, or a new one (``make_film.py``) in the work folder."""
    from make_film import make_film

    if args.film:
        return {"video": str(args.film.resolve())}
    return make_film(
        args.work / "stimuli", minutes=args.minutes, fps=args.fps, size=args.video_size
    )


def _default_atlas() -> str | None:
    """An HCP-MMP1 folder ``gpu_wheels.sh`` put in .gpu_carry/atlas (optional); else None.

    None leaves the workflow to its own search (``products.atlas_cache``, MNE's folders).
    """
    from tribe_core.products.atlas_source import annot_pair

    path = REPO / ".gpu_carry" / "atlas"
    return str(path) if annot_pair(path) else None


if __name__ == "__main__":
    sys.exit(main())
