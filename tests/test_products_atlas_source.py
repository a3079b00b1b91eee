"""Where HCP-MMP1 comes from: configured folder, caches, an allowed download, or nothing."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.workflow_helpers import make_workdir, planned_jobs, snakemake
from tribe_core.errors import TribeConfigError
from tribe_core.products import atlas
from tribe_core.products.atlas_source import (
    AtlasSettings,
    atlas_missing_message,
    resolve_atlas_dir,
)


@pytest.fixture()
def no_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home without any atlas cache (HOME, XDG_CACHE_HOME, SUBJECTS_DIR in tmp_path)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("SUBJECTS_DIR", raising=False)
    return home


@pytest.fixture()
def atlas_server(synthetic_atlas: Path, tmp_path: Path) -> Iterator[dict[str, object]]:
    """An HTTP server on 127.0.0.1 serving the synthetic annotations; counts requests."""
    served = tmp_path / "served"
    shutil.copytree(synthetic_atlas, served)
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            hits.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield {
            "urls": {h: f"{base}/{h}.HCP-MMP1.annot" for h in ("lh", "rh")},
            "base": base,
            "hits": hits,
        }
    finally:
        server.shutdown()
        server.server_close()


def test_configured_folder_wins_and_a_wrong_one_is_an_error(
    synthetic_atlas: Path, tmp_path: Path, no_caches: Path
) -> None:
    assert resolve_atlas_dir(AtlasSettings(atlas_dir=str(synthetic_atlas))) == synthetic_atlas
    with pytest.raises(TribeConfigError, match="products.atlas_dir .* does not exist"):
        resolve_atlas_dir(AtlasSettings(atlas_dir=str(tmp_path / "nowhere")))
    with pytest.raises(TribeConfigError, match="holds no lh/rh.HCP-MMP1.annot"):
        resolve_atlas_dir(AtlasSettings(atlas_dir=str(tmp_path)))


def test_caches_are_found_in_order(synthetic_atlas: Path, tmp_path: Path, no_caches: Path) -> None:
    assert resolve_atlas_dir(AtlasSettings()) is None
    # MNE's layout under $SUBJECTS_DIR, with MNE's file names.
    label = tmp_path / "subjects" / "fsaverage" / "label"
    label.mkdir(parents=True)
    for hemi in ("lh", "rh"):
        shutil.copy(synthetic_atlas / f"{hemi}.HCP-MMP1.annot", label / f"{hemi}.HCPMMP1.annot")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SUBJECTS_DIR", str(tmp_path / "subjects"))
        assert resolve_atlas_dir(AtlasSettings()) == label
        parc = atlas.load_hcp_mmp1(None)  # None: the caches
        assert len(parc.areas) == 24
        # Our own cache comes first.
        ours = no_caches / ".cache" / "tribeflow" / "hcp_mmp1"
        shutil.copytree(synthetic_atlas, ours)
        assert resolve_atlas_dir(AtlasSettings()) == ours
        custom = tmp_path / "lab_cache"
        shutil.copytree(synthetic_atlas, custom)
        assert resolve_atlas_dir(AtlasSettings(cache_dir=str(custom))) == custom


def test_nothing_found_says_the_three_ways(no_caches: Path) -> None:
    settings = AtlasSettings()
    assert resolve_atlas_dir(settings) is None
    message = atlas_missing_message(settings)
    for needle in ("products.atlas_dir", "mne.datasets.fetch_hcp_mmp_parcellation",
                   "products.atlas_download: true", "humanconnectome.org", "left out"):  # fmt: skip
        assert needle in message
    with pytest.raises(TribeConfigError, match="HCP-MMP1 atlas not found"):
        atlas.load_hcp_mmp1(None)


def test_download_only_when_allowed_then_cached(
    atlas_server: dict, synthetic_atlas: Path, tmp_path: Path, no_caches: Path
) -> None:
    cache = tmp_path / "cache"
    urls = atlas_server["urls"]
    assert resolve_atlas_dir(AtlasSettings(cache_dir=str(cache), urls=urls)) is None
    assert atlas_server["hits"] == []  # not allowed: nothing fetched
    allowed = AtlasSettings(cache_dir=str(cache), download=True, urls=urls)
    assert resolve_atlas_dir(allowed) == cache
    assert sorted(atlas_server["hits"]) == ["/lh.HCP-MMP1.annot", "/rh.HCP-MMP1.annot"]
    for hemi in ("lh", "rh"):
        got = (cache / f"{hemi}.HCP-MMP1.annot").read_bytes()
        assert got == (synthetic_atlas / f"{hemi}.HCP-MMP1.annot").read_bytes()
    assert not list(cache.glob(".*"))  # no partial files left
    np.testing.assert_array_equal(
        atlas.load_hcp_mmp1(cache).vertex_area, atlas.load_hcp_mmp1(synthetic_atlas).vertex_area
    )
    assert resolve_atlas_dir(allowed) == cache
    assert len(atlas_server["hits"]) == 2  # downloaded once


def test_failed_download_names_the_url_and_the_keys(
    atlas_server: dict, tmp_path: Path, no_caches: Path
) -> None:
    missing = {"lh": f"{atlas_server['base']}/nope.annot", "rh": f"{atlas_server['base']}/x"}
    settings = AtlasSettings(cache_dir=str(tmp_path / "cache"), download=True, urls=missing)
    with pytest.raises(TribeConfigError) as err:
        resolve_atlas_dir(settings)
    assert missing["lh"] in str(err.value) and "404" in str(err.value)
    assert "products.atlas_dir" in str(err.value) and "products.atlas_urls" in str(err.value)
    assert not (tmp_path / "cache" / "lh.HCP-MMP1.annot").exists()


def test_figshare_checksums_are_checked(
    atlas_server: dict, tmp_path: Path, no_caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The figshare address is served locally; its MD5 (MNE's) does not match our file.
    from tribe_core.products import atlas_source

    local = atlas_server["urls"]
    monkeypatch.setitem(atlas_source.FIGSHARE_URLS, "lh", local["lh"])
    monkeypatch.setitem(atlas_source.FIGSHARE_URLS, "rh", local["rh"])
    settings = AtlasSettings(cache_dir=str(tmp_path / "cache"), download=True)
    with pytest.raises(TribeConfigError, match="has MD5 .* expected 46a102b5"):
        resolve_atlas_dir(settings)
    assert not (tmp_path / "cache" / "lh.HCP-MMP1.annot").exists()


def test_workflow_without_any_atlas_makes_everything_else(
    tmp_path: Path, demo_models: Path, demo_stimuli: Path, no_caches: Path
) -> None:
    """No atlas anywhere: ROI products left out at DAG time, one warning, exit 0."""
    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    shutil.copy(demo_stimuli / "story.txt", stimuli)
    work = make_workdir(tmp_path / "work", demo_models, stimuli)
    data = yaml.safe_load((work / "test_config.yaml").read_text())
    data["products"]["atlas_dir"] = None
    (work / "test_config.yaml").write_text(yaml.safe_dump(data))
    # no_caches points HOME, XDG_CACHE_HOME and SUBJECTS_DIR of the runs into tmp_path.
    jobs = planned_jobs(work)
    assert "roi_table" not in jobs and {"predict", "volumes", "plots", "report"} <= set(jobs)
    proc = snakemake(work, "--cores", "2")
    assert proc.stderr.count("HCP-MMP1 atlas not found") == 1, proc.stderr[-3000:]
    base = work / "results" / "story"
    for product in ("predictions.zarr", "nifti/predictions.nii.gz",
                    "nifti/predictions.lh.func.gii", "plots", "report.html"):  # fmt: skip
        assert (base / product).exists(), product
    assert not (base / "rois").exists()


def test_workflow_downloads_the_allowed_atlas_at_dag_time(
    tmp_path: Path, demo_models: Path, demo_stimuli: Path, no_caches: Path, atlas_server: dict
) -> None:
    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    shutil.copy(demo_stimuli / "story.txt", stimuli)
    work = make_workdir(tmp_path / "work", demo_models, stimuli)
    data = yaml.safe_load((work / "test_config.yaml").read_text())
    cache = tmp_path / "atlas_cache"
    data["products"].update(
        atlas_dir=None, atlas_cache=str(cache), atlas_download=True, atlas_urls=atlas_server["urls"]
    )
    (work / "test_config.yaml").write_text(yaml.safe_dump(data))
    proc = snakemake(work, "--dry-run", "--cores", "1")
    assert "HCP-MMP1 atlas not found" not in proc.stderr
    assert "roi_table" in proc.stdout
    assert (cache / "lh.HCP-MMP1.annot").is_file() and (cache / "rh.HCP-MMP1.annot").is_file()
