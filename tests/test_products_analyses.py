"""Modality contributions, evaluation against real fMRI and fsaverage resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tribe_core.errors import TribeInputError
from tribe_core.products import analyses, volumes
from tribe_core.products.meshes import load_fsaverage5


def smooth_maps(n_trs: int, seed: int = 0) -> np.ndarray:
    """Smooth random patterns on the sphere ``[n_trs, 20484]`` (distinct per TR)."""
    rng = np.random.default_rng(seed)
    left, right = load_fsaverage5("sphere")
    xyz = np.concatenate([left.coordinates, right.coordinates]) / 100.0
    freq = rng.uniform(1, 4, size=(n_trs, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(n_trs, 1))
    return np.sin((freq[:, None, :] * xyz[None]).sum(-1) + phase).astype(np.float32)


def test_ablation_contributions_of_a_linear_model() -> None:
    rng = np.random.default_rng(0)
    weights = {m: rng.standard_normal((4, 20484)).astype(np.float32) for m in ("text", "audio")}
    features = {"text": rng.standard_normal((1, 4, 6)), "audio": rng.standard_normal((1, 4, 6)),
                "video": None}  # fmt: skip

    def predict(feats: dict) -> np.ndarray:
        out = np.full((6, 20484), 0.5, dtype=np.float32)  # bias, shared by all runs
        for m, f in feats.items():
            if f is not None:
                out += (f[0].T @ weights[m]).astype(np.float32)
        return out

    full, contrib = analyses.ablation_contributions(predict, features)
    assert set(contrib) == {"text", "audio"}  # absent modalities are not ablated
    for m in contrib:
        expected = features[m][0].T @ weights[m]
        np.testing.assert_allclose(contrib[m], expected, rtol=1e-4, atol=1e-4)
    table = analyses.contribution_table(contrib)
    assert len(table) == 20484 and list(table.columns[-1:]) == ["dominant"]
    np.testing.assert_allclose(table["text_abs"], np.abs(contrib["text"]).mean(0), rtol=1e-5)
    dominant = np.where(np.abs(contrib["text"]).mean(0) >= np.abs(contrib["audio"]).mean(0),
                        "text", "audio")  # fmt: skip
    assert (table["dominant"].to_numpy() == dominant).all()
    with pytest.raises(TribeInputError, match="same TRs"):
        analyses.modality_contributions(full, {"text": full[:3]})


def test_contributions_of_a_one_modality_stimulus(tmp_path: Path, demo_models: Path) -> None:
    """Audio only (as the demo's speech_audio): its map is the prediction minus the
    prediction with every modality zero-filled; text and video get none."""
    import nibabel as nib

    from tribe_core.encoder import load_encoder
    from tribe_core.events import write_events_tsv
    from tribe_core.io.zarr_store import write_feature_store
    from tribe_core.media import MediaInfo
    from tribe_core.segments import predict_stimulus
    from tribe_core.stages import PredictSettings, run_contributions

    checkpoint = str(demo_models / "tribe")
    encoder = load_encoder(checkpoint)
    audio = np.random.default_rng(3).standard_normal((*encoder.feature_dims["audio"], 12))
    audio = audio.astype(np.float32)  # 6 s at 2 Hz
    stores = {m: tmp_path / f"{m}.zarr" for m in ("text", "audio", "video")}
    for m, path in stores.items():
        write_feature_store(path, audio if m == "audio" else None, {})
    events = pd.DataFrame(
        {"type": ["Audio"], "start": [0.0], "duration": [6.0], "text": [""], "sentence": [""],
         "sentence_char": [0], "context": [""], "language": ["en"]}
    )  # fmt: skip
    write_events_tsv(events, tmp_path / "events.tsv")
    MediaInfo("audio", "speech_audio.wav", 6.0, True, False).write(tmp_path / "media.json")
    out = tmp_path / "contributions"
    settings = PredictSettings(
        checkpoint=checkpoint, device="cpu", precision="fp32", batch_size=8, duration_trs=100,
        overlap_trs=0, compile=False,
    )  # fmt: skip
    run_contributions(
        stores, tmp_path / "events.tsv", tmp_path / "media.json", out, settings,
        stimulus="speech_audio",
    )  # fmt: skip
    names = sorted(p.name for p in out.iterdir())
    assert "contribution_audio.lh.func.gii" in names and "contributions.png" in names
    assert not any("text" in n or "video" in n for n in names)  # absent: no map
    table = pd.read_csv(out / "contributions.tsv", sep="\t")
    assert [c for c in table.columns if c.endswith("_mean")] == ["audio_mean"]
    assert set(table["dominant"]) == {"audio"}
    full = predict_stimulus(encoder, {"audio": audio}, events, duration_s=6.0).predictions
    none = dict.fromkeys(stores)
    base = predict_stimulus(encoder, none, events, duration_s=6.0, allow_all_absent=True)
    want = (full - base.predictions).mean(axis=0)
    assert np.abs(want).max() > 1e-3  # the modality does change the prediction
    np.testing.assert_allclose(table["audio_mean"], want, rtol=1e-5, atol=1e-7)
    lh = nib.load(out / "contribution_audio.lh.func.gii").darrays[0].data
    np.testing.assert_allclose(lh, want[:10242], rtol=1e-6, atol=1e-7)


def test_write_contribution_maps(tmp_path: Path) -> None:
    import nibabel as nib
    from PIL import Image

    maps = smooth_maps(4)
    contrib = {"text": maps, "audio": -0.5 * maps}
    paths = analyses.write_contribution_maps(contrib, tmp_path)
    names = [p.name for p in paths]
    assert "contributions.tsv" in names and "contribution_audio.rh.func.gii" in names
    lh = nib.load(tmp_path / "contribution_text.lh.func.gii").darrays[0].data
    np.testing.assert_allclose(lh, maps.mean(0)[:10242], rtol=1e-6)
    table = pd.read_csv(tmp_path / "contributions.tsv", sep="\t")
    assert (table["dominant"] == "text").all()
    png = Image.open(tmp_path / "contributions.png")
    assert png.height > 400 and png.width > 1000  # two rows of four panels


def test_evaluation_metrics() -> None:
    pred = smooth_maps(12)
    per_vertex, summary = analyses.evaluate_predictions(pred, pred)
    np.testing.assert_allclose(per_vertex["pearson_r"], 1.0, atol=1e-6)
    assert per_vertex["mse"].max() == 0.0
    s = summary.set_index("metric")["value"]
    assert s["mean_pearson_r"] == pytest.approx(1.0) and s["top1_retrieval"] == 1.0
    assert summary.set_index("metric").loc["top5_retrieval", "chance"] == pytest.approx(5 / 12)
    per_vertex, _ = analyses.evaluate_predictions(pred, -2 * pred + 1)
    np.testing.assert_allclose(per_vertex["pearson_r"], -1.0, atol=1e-6)
    rng = np.random.default_rng(3)
    real = pred + rng.standard_normal(pred.shape).astype(np.float32)
    per_vertex, _ = analyses.evaluate_predictions(pred, real)
    for v in (0, 5000, 20483):
        expected = np.corrcoef(pred[:, v], real[:, v])[0, 1]
        assert per_vertex["pearson_r"][v] == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(per_vertex["mse"], ((pred - real) ** 2).mean(0), rtol=1e-5)
    # Swapping two real TRs: their predicted maps no longer retrieve the right TR first.
    swapped = pred.copy()
    swapped[[0, 1]] = pred[[1, 0]]
    ranks = analyses.tr_retrieval_ranks(pred, swapped)
    assert ranks[0] >= 1 and ranks[1] >= 1 and (ranks[2:] == 0).all()
    const = pred.copy()
    const[:, 7] = 3.0
    per_vertex, _ = analyses.evaluate_predictions(pred, const)
    assert np.isnan(per_vertex["pearson_r"][7])
    with pytest.raises(TribeInputError, match="same TRs"):
        analyses.evaluate_predictions(pred, pred[:5])


def test_load_real_fmri_formats(tmp_path: Path) -> None:
    pred = smooth_maps(4)
    np.save(tmp_path / "run.npy", pred.T)  # vertices first: transposed on load
    np.testing.assert_array_equal(analyses.load_real_fmri(tmp_path / "run.npy"), pred)
    lh, rh = volumes.write_gifti(pred, tmp_path, name="run")
    np.testing.assert_array_equal(analyses.load_real_fmri(rh), pred)
    np.testing.assert_array_equal(analyses.load_real_fmri((lh, rh)), pred)
    # fsaverage6-sized data: the first 10242 vertices per hemisphere are fsaverage5's.
    fine = np.zeros((4, 2 * 40962), dtype=np.float32)
    fine[:, :10242], fine[:, 40962 : 40962 + 10242] = pred[:, :10242], pred[:, 10242:]
    np.save(tmp_path / "fine.npy", fine)
    np.testing.assert_array_equal(analyses.load_real_fmri(tmp_path / "fine.npy"), pred)
    np.save(tmp_path / "bad.npy", np.zeros((4, 1000)))
    with pytest.raises(TribeInputError, match="vertices"):
        analyses.load_real_fmri(tmp_path / "bad.npy")
    (tmp_path / "lh.broken.func.gii").write_text("not XML")
    (tmp_path / "rh.broken.func.gii").write_bytes(rh.read_bytes())
    with pytest.raises(TribeInputError, match=r"unreadable GIFTI: ExpatError"):
        analyses.load_real_fmri(tmp_path / "rh.broken.func.gii")
    nii = volumes.write_nifti(pred, tmp_path / "pair.nii.gz")  # a (left, right) pair is GIFTI only
    with pytest.raises(TribeInputError, match=r"not a GIFTI image \(Nifti1Image\)"):
        analyses.load_real_fmri((nii, nii))


def test_nifti_round_trip_through_vol_to_surf(tmp_path: Path) -> None:
    pred = smooth_maps(2)
    nii = volumes.write_nifti(pred, tmp_path / "run.nii.gz")
    back = analyses.load_real_fmri(nii)
    assert back.shape == pred.shape
    per_vertex, _ = analyses.evaluate_predictions(pred, back)
    spatial_r = [np.corrcoef(pred[t], back[t])[0, 1] for t in range(2)]
    assert min(spatial_r) > 0.9


def test_resampling_nearest_on_sphere() -> None:
    values = smooth_maps(2)
    for mesh, n in (("fsaverage4", 2562), ("fsaverage3", 642)):
        out = analyses.resample_fsaverage5(values, mesh)
        assert out.shape == (2, 2 * n)
        np.testing.assert_array_equal(out[:, :n], values[:, :n])  # nested meshes
        np.testing.assert_array_equal(out[:, n:], values[:, 10242 : 10242 + n])
    # A finer mesh: fsaverage5 vertices plus edge midpoints (as fsaverage6 is built).
    spheres = load_fsaverage5("sphere")
    fine = []
    for mesh in spheres:
        edges = np.unique(np.sort(mesh.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), 1), axis=0)
        mid = mesh.coordinates[edges].mean(axis=1)
        mid *= 100.0 / np.linalg.norm(mid, axis=1, keepdims=True)
        fine.append((np.concatenate([mesh.coordinates, mid]), edges))
    out = analyses.resample_fsaverage5(values, target_sphere=(fine[0][0], fine[1][0]))
    n_fine = len(fine[0][0])
    assert n_fine == 40962 and out.shape == (2, 2 * n_fine)
    np.testing.assert_array_equal(out[:, :10242], values[:, :10242])
    # Each midpoint takes the value of one of its edge's two vertices.
    mids, edges = out[0, 10242:n_fine], fine[0][1]
    assert np.all((mids == values[0, edges[:, 0]]) | (mids == values[0, edges[:, 1]]))


def test_write_evaluation(tmp_path: Path) -> None:
    pred = smooth_maps(6)
    paths = analyses.write_evaluation(pred, pred, tmp_path, plot=False)
    names = {p.name for p in paths}
    assert {"evaluation_vertices.tsv", "evaluation_summary.tsv",
            "evaluation_r.lh.func.gii", "evaluation_r.rh.func.gii"} <= names  # fmt: skip
    summary = pd.read_csv(tmp_path / "evaluation_summary.tsv", sep="\t").set_index("metric")
    assert summary.loc["top1_retrieval", "value"] == 1.0
    resampled = analyses.write_resampled(pred, tmp_path, "fsaverage4")
    assert np.load(resampled).shape == (6, 5124)
