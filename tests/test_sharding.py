"""Time-sharded video features (``features.video_shards``) and one GPU per job."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from tests.workflow_helpers import CROSS_RUN_ATOL, make_workdir, snakemake

LONG_S = 90  # the shortest video with two reference chunks: 60 s + 30 s


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A silent 90 s video (96x72, 25 fps): two chunks, 60 s and 30 s."""
    folder = tmp_path_factory.mktemp("long") / "stimuli"
    folder.mkdir()
    path = folder / "long.mp4"
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi",
         "-i", f"testsrc2=size=96x72:rate=25:duration={LONG_S}", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _run_project(root: Path, demo_models: Path, stimuli: Path, shards: int) -> Path:
    work = make_workdir(
        root / f"shards{shards}",
        demo_models,
        stimuli,
        features={"device": "cpu", "dtype": "float32", "batch_size": 4, "video_shards": shards},
    )
    snakemake(work, "--cores", "2", "results/long/predictions.zarr")
    return work


@pytest.mark.slow  # two workflow runs: about 100 s on a shared 2-core box
def test_sharded_workflow_equals_unsharded(
    tmp_path: Path, demo_models: Path, long_video: Path
) -> None:
    """2 shards + merge give the array and predictions of the one-job run.

    The merge itself is bitwise (``test_more_shards_than_chunks_and_checks``, one process);
    across the separate processes of two workflow runs CPU float32 kernels need not round
    alike: CI once saw predictions from bitwise-equal features differ by 3.3e-6.
    """
    from tribe_core.io.zarr_store import read_feature_store
    from tribe_core.segments import read_predictions

    one = _run_project(tmp_path, demo_models, long_video.parent, 1)
    two = _run_project(tmp_path, demo_models, long_video.parent, 2)
    store = "results/long/features/video.zarr"
    whole, whole_attrs = read_feature_store(one / store)
    merged, merged_attrs = read_feature_store(two / store)
    assert whole is not None and whole.shape[-1] == 2 * LONG_S
    # Chunks are encoded independently and the clips of a batch do not interact, and
    # with batch_size 4 the batches are the same (120 steps per chunk): equal up to the
    # rounding of the process that computed them (features are of order 1).
    np.testing.assert_allclose(merged, whole, rtol=0, atol=1e-6)
    assert {k: v for k, v in merged_attrs.items() if k != "timing"} == {
        k: v for k, v in whole_attrs.items() if k != "timing"
    }
    assert len(merged_attrs["timing"]["shards"]) == 2
    shards = sorted((two / "results/long/features/video.shards").iterdir())
    assert [p.name for p in shards] == ["0.zarr", "1.zarr"]
    parts = [read_feature_store(p) for p in shards]
    assert [a["chunks"] for _, a in parts] == [[0], [1]]
    assert [d.shape[-1] for d, _ in parts] == [120, 60]
    assert not (one / "results/long/features/video.shards").exists()
    pred_one = read_predictions(one / "results/long/predictions.zarr").predictions
    pred_two = read_predictions(two / "results/long/predictions.zarr").predictions
    assert pred_one.shape[1] == 20484
    np.testing.assert_allclose(pred_two, pred_one, rtol=0, atol=CROSS_RUN_ATOL)


def test_more_shards_than_chunks_and_checks(
    tmp_path: Path, demo_models: Path, demo_stimuli: Path
) -> None:
    """A 6 s video (one chunk) in 2 shards: shard 1 is empty, the merge still equal."""
    from tribe_core.errors import TribeInputError
    from tribe_core.io.zarr_store import read_feature_store
    from tribe_core.media import probe_media
    from tribe_core.stages import (
        run_extract_features,
        run_extract_video_shard,
        run_merge_video_shards,
    )

    video = demo_stimuli / "speech_video.mp4"
    media = tmp_path / "media.json"
    media.write_text(json.dumps(probe_media(video).to_dict()))
    kw = {
        "checkpoint": str(demo_models / "tribe"),
        "model_override": None,
        "device": "cpu",
        "dtype": "float32",
        "batch_size": 4,
        "stimulus": "speech_video",
    }
    run_extract_features("video", video, media, tmp_path / "whole.zarr", **kw)
    shards = [tmp_path / f"{i}.zarr" for i in range(2)]
    for i, out in enumerate(shards):
        run_extract_video_shard(video, media, out, shard=i, n_shards=2, **kw)
    empty, attrs = read_feature_store(shards[1])
    assert empty is None and attrs["chunks"] == []
    run_merge_video_shards(shards, tmp_path / "merged.zarr", stimulus="speech_video")
    whole, _ = read_feature_store(tmp_path / "whole.zarr")
    merged, _ = read_feature_store(tmp_path / "merged.zarr")
    assert whole is not None and whole.shape[-1] == 12
    np.testing.assert_array_equal(merged, whole)
    with pytest.raises(TribeInputError, match="expected shards 0..1"):
        run_merge_video_shards([shards[0], shards[0]], tmp_path / "bad.zarr")
    with pytest.raises(ValueError, match="shard must be in"):
        run_extract_video_shard(video, media, tmp_path / "x.zarr", shard=2, n_shards=2, **kw)


def _shard_jobs(workdir: Path, *args: str) -> dict[str, list[str]]:
    """Rule -> wildcards lines of the jobs a dry run plans."""
    out = snakemake(workdir, "--dry-run", "--cores", "1", *args).stdout
    jobs: dict[str, list[str]] = {}
    rule = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.startswith("wildcards:") and rule:
            jobs.setdefault(rule, []).append(line.removeprefix("wildcards:").strip())
    return jobs


def test_dry_run_plans_shards_for_video_stimuli_only(
    tmp_path: Path, demo_models: Path, demo_stimuli: Path
) -> None:
    three = make_workdir(
        tmp_path / "three", demo_models, demo_stimuli, features={"video_shards": 3}
    )
    jobs = _shard_jobs(three)
    assert sorted(jobs["extract_video_shard"]) == [
        f"stimulus=speech_video, shard={i}" for i in range(3)
    ]
    assert jobs["merge_video_shards"] == ["stimulus=speech_video"]
    assert "extract_video_features" not in jobs
    assert sorted(jobs["predict"]) == [
        f"stimulus={name}" for name in ("asr_audio", "speech_audio", "speech_video", "story")
    ]
    one = make_workdir(tmp_path / "one", demo_models, demo_stimuli)
    jobs = _shard_jobs(one)
    assert jobs["extract_video_features"] == ["stimulus=speech_video"]
    assert "extract_video_shard" not in jobs and "merge_video_shards" not in jobs


# --- one GPU per job ---------------------------------------------------------------

_CHILD = """
import logging, os, sys
from tribe_core.devices import bind_gpu
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
print(bind_gpu(None, int(sys.argv[1]), lock_dir=sys.argv[2], timeout_s=float(sys.argv[3]),
               jobs_per_gpu=int(sys.argv[4])),
      os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
sys.stdin.readline()  # hold the GPU until told to exit
"""


def _child(
    n_gpus: int, lock_dir: Path, timeout_s: float = 20.0, jobs_per_gpu: int = 1
) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, *map(str, (n_gpus, lock_dir, timeout_s, jobs_per_gpu))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def _slot(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline().split()
    assert line, proc.stderr.read()
    assert line[0] == line[1]  # returned value == CUDA_VISIBLE_DEVICES
    return line[0]


def _wait_until_waiting(proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """Block until the child logs that every slot is held (it is waiting, not just slow)."""
    deadline = time.monotonic() + timeout_s
    fd = proc.stderr.fileno()
    seen = b""
    while b"held; waiting for a free one" not in seen:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            raise AssertionError(f"the child never reported waiting for a GPU slot: {seen!r}")
        seen += chunk


def _finish(proc: subprocess.Popen) -> None:
    proc.communicate("\n", timeout=20)


def test_gpu_locks_give_distinct_slots_and_reuse_released_ones(tmp_path: Path) -> None:
    holders = [_child(3, tmp_path) for _ in range(3)]
    try:
        slots = [_slot(p) for p in holders]
        assert sorted(slots) == ["0", "1", "2"]
        waiter = _child(3, tmp_path)  # all 3 held: it waits
        _wait_until_waiting(waiter)
        assert waiter.poll() is None
        freed = holders.pop(1)
        _finish(freed)
        assert _slot(waiter) == slots[1]  # the released GPU, and only that one
        holders.append(waiter)
        late = _child(3, tmp_path, timeout_s=0.5)
        _, err = late.communicate("\n", timeout=20)
        assert late.returncode != 0 and "held by other jobs" in err
    finally:
        for proc in holders:
            _finish(proc)


def test_shared_gpus_fill_evenly_then_wait(tmp_path: Path) -> None:
    """Two GPUs, two jobs each: GPUs 0, 1, 0, 1; a fifth job waits for a freed slot."""
    holders: list[subprocess.Popen] = []
    try:
        for _ in range(4):  # one at a time: each takes the first free slot
            holders.append(_child(2, tmp_path, jobs_per_gpu=2))
            holders[-1].slot = _slot(holders[-1])  # type: ignore[attr-defined]
        assert [p.slot for p in holders] == ["0", "1", "0", "1"]  # type: ignore[attr-defined]
        assert sorted(f.name for f in tmp_path.iterdir()) == [
            "gpu0.1.lock", "gpu0.lock", "gpu1.1.lock", "gpu1.lock",
        ]  # fmt: skip
        waiter = _child(2, tmp_path, jobs_per_gpu=2)
        _wait_until_waiting(waiter)  # 4 slots held: it waits
        assert waiter.poll() is None
        _finish(holders.pop(3))  # a job on GPU 1 ends
        assert _slot(waiter) == "1"
        holders.append(waiter)
        late = _child(2, tmp_path, timeout_s=0.5, jobs_per_gpu=2)
        _, err = late.communicate("\n", timeout=20)
        assert late.returncode != 0 and "4 GPU slots (2 GPUs x 2 jobs)" in err
    finally:
        for proc in holders:
            _finish(proc)


def test_scheduler_binding_and_explicit_slot_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tribe_core.devices import bind_device, bind_gpu

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # as SLURM sets it
    assert bind_gpu(None, 4, lock_dir=tmp_path) == "3"
    assert not list(tmp_path.iterdir())  # no lock taken
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert bind_gpu(5, 4) == "1" and os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert bind_gpu(None, 0) == "" and "CUDA_VISIBLE_DEVICES" not in os.environ
    assert bind_device("cpu") == "cpu" and "CUDA_VISIBLE_DEVICES" not in os.environ
    assert bind_device("cuda:1") == "cuda:1" and "CUDA_VISIBLE_DEVICES" not in os.environ
