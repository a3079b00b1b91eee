"""Where the HCP-MMP1 annotation files come from (standard library only: imported at DAG time).

The project never ships HCP-MMP1 (Glasser et al. 2016). :func:`resolve_atlas_dir`
looks, in order, at

1. the configured folder (``products.atlas_dir``);
2. local caches: ``products.atlas_cache`` (default ``$XDG_CACHE_HOME/tribeflow/hcp_mmp1``,
   i.e. ``~/.cache/tribeflow/hcp_mmp1``), then MNE's layout
   (``$SUBJECTS_DIR/fsaverage/label`` and ``~/mne_data/MNE-fsaverage-data/fsaverage/label``,
   where ``mne.datasets.fetch_hcp_mmp_parcellation`` writes ``?h.HCPMMP1.annot``);
3. a download into the cache, only when the config accepts the HCP terms
   (``products.atlas_download: true``), from the figshare distribution MNE uses.

When none gives the atlas it returns ``None`` and the workflow leaves the ROI
products out (:func:`atlas_missing_message` says the three ways to get it).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tribe_core.errors import TribeConfigError

HEMIS = ("lh", "rh")
# The figshare distribution (Mills 2016, CC BY 4.0) that MNE's fetcher downloads, with
# MNE's MD5 sums; ``products.atlas_urls`` may point elsewhere (a lab mirror).
FIGSHARE_URLS = {
    "lh": "https://ndownloader.figshare.com/files/5528816",
    "rh": "https://ndownloader.figshare.com/files/5528819",
}
FIGSHARE_MD5 = {"lh": "46a102b59b2fb1bb4bd62d51bf02e975", "rh": "75e96b331940227bbcb07c1c791c2463"}
HCP_TERMS_URL = (
    "https://www.humanconnectome.org/study/hcp-young-adult/document/"
    "wu-minn-hcp-consortium-open-access-data-use-terms"
)
ANNOT_NAMES = ("HCP-MMP1", "HCPMMP1")
_DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class AtlasSettings:
    """The ``products`` config keys that decide where HCP-MMP1 comes from.

    Attributes
    ----------
    atlas_dir
        A folder the user named (``products.atlas_dir``), or None.
    cache_dir
        Our cache folder (``products.atlas_cache``); None: the default cache.
    download
        ``products.atlas_download``: the user accepted the HCP terms and allows a download.
    urls
        ``{lh, rh}`` download addresses (``products.atlas_urls``); None: figshare.
    """

    atlas_dir: str | None = None
    cache_dir: str | None = None
    download: bool = False
    urls: Mapping[str, str] | None = None

    @classmethod
    def from_products(cls, products: Mapping) -> AtlasSettings:
        """Read the settings from the validated ``products`` config section."""
        return cls(
            atlas_dir=products.get("atlas_dir"),
            cache_dir=products.get("atlas_cache"),
            download=bool(products.get("atlas_download")),
            urls=products.get("atlas_urls"),
        )


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tribeflow/hcp_mmp1`` (``~/.cache/tribeflow/hcp_mmp1``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tribeflow" / "hcp_mmp1"


def annot_pair(folder: Path) -> dict[str, Path] | None:
    """``{lh, rh}`` annotation paths in ``folder`` (or its ``label/``, ``fsaverage/label/``)."""
    for sub in (folder, folder / "label", folder / "fsaverage" / "label"):
        for name in ANNOT_NAMES:
            pair = {hemi: sub / f"{hemi}.{name}.annot" for hemi in HEMIS}
            if all(p.is_file() for p in pair.values()):
                return pair
    return None


def candidate_caches(cache_dir: str | Path | None) -> list[Path]:
    """Folders searched for an already downloaded atlas, in order."""
    caches = [Path(cache_dir).expanduser() if cache_dir else default_cache_dir()]
    subjects_dir = os.environ.get("SUBJECTS_DIR")
    if subjects_dir:
        caches.append(Path(subjects_dir) / "fsaverage" / "label")
    caches.append(Path.home() / "mne_data" / "MNE-fsaverage-data" / "fsaverage" / "label")
    return caches


def resolve_atlas_dir(settings: AtlasSettings) -> Path | None:
    """The folder holding ``{lh,rh}.HCP-MMP1.annot``, downloading it if allowed; else None.

    Raises
    ------
    TribeConfigError
        ``atlas_dir`` is set but holds no annotation pair (the user named it, so a wrong
        folder is an error, not a silent fallback), or an allowed download failed.
    """
    if settings.atlas_dir:
        folder = Path(settings.atlas_dir).expanduser()
        if not folder.is_dir():
            raise TribeConfigError(
                f"products.atlas_dir {str(folder)!r} does not exist; point it at a folder "
                "holding lh.HCP-MMP1.annot and rh.HCP-MMP1.annot, or set it to null to use "
                "the cache or a download (see README, 'HCP-MMP1 atlas')"
            )
        if annot_pair(folder) is None:
            raise TribeConfigError(
                f"products.atlas_dir {str(folder)!r} holds no lh/rh.HCP-MMP1.annot (looked "
                "in it, label/ and fsaverage/label/)"
            )
        return folder
    for cache in candidate_caches(settings.cache_dir):
        if annot_pair(cache) is not None:
            return cache
    if settings.download:
        return download_hcp_mmp1(candidate_caches(settings.cache_dir)[0], settings.urls)
    return None


def download_hcp_mmp1(cache: Path, urls: Mapping[str, str] | None = None) -> Path:
    """Download both annotations into ``cache`` once (atomic; MD5-checked for figshare).

    Raises
    ------
    TribeConfigError
        Naming the URL that failed and the config keys to set instead.
    """
    urls = dict(urls or FIGSHARE_URLS)
    cache.mkdir(parents=True, exist_ok=True)
    for hemi in HEMIS:
        final = cache / f"{hemi}.HCP-MMP1.annot"
        if final.is_file():
            continue
        url = urls[hemi]
        tmp = final.with_name(f".{final.name}.part")
        try:
            with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
                data = response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TribeConfigError(
                f"downloading HCP-MMP1 ({hemi}) from {url} failed: {exc}. Set "
                "products.atlas_dir to a folder holding lh/rh.HCP-MMP1.annot, or "
                "products.atlas_urls to a mirror you can reach"
            ) from exc
        expected = FIGSHARE_MD5[hemi] if url == FIGSHARE_URLS[hemi] else None
        if expected and hashlib.md5(data).hexdigest() != expected:
            raise TribeConfigError(
                f"HCP-MMP1 ({hemi}) downloaded from {url} has MD5 "
                f"{hashlib.md5(data).hexdigest()}, expected {expected}; the download is "
                "corrupt or the file changed: set products.atlas_dir to a verified copy"
            )
        tmp.write_bytes(data)
        os.replace(tmp, final)
    return cache


def atlas_missing_message(settings: AtlasSettings) -> str:
    """The one warning printed when no atlas is found: the three ways to get it."""
    caches = ", ".join(str(c) for c in candidate_caches(settings.cache_dir))
    return (
        "HCP-MMP1 atlas not found: the ROI tables (rois/) are left out; every other output "
        "is made. To get them, either (1) set products.atlas_dir to a folder holding "
        "lh.HCP-MMP1.annot and rh.HCP-MMP1.annot, (2) put those files in a cache folder "
        f"({caches}; e.g. with mne.datasets.fetch_hcp_mmp_parcellation), or (3) set "
        "products.atlas_download: true to download them once from figshare, which accepts "
        f"the WU-Minn HCP open access data use terms ({HCP_TERMS_URL})."
    )
