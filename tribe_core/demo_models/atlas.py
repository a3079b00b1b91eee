"""A synthetic HCP-style parcellation for tests: ``python -m tribe_core.demo_models.atlas OUT``.

Not HCP-MMP1: areas carry HCP-MMP1 names (``L_V1_ROI``) but are Voronoi cells of
seed vertices on nilearn's bundled fsaverage5 sphere, so the workflow's ROI
stages run where the real atlas (which we may not ship) is absent. Written as
FreeSurfer ``{lh,rh}.HCP-MMP1.annot`` on fsaverage5 (10,242 vertices per
hemisphere), with a medial-wall cap left unlabelled (``???``), as the real one.
Deterministic: the same files on every machine.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# HCP-MMP1 names, V1 first (seeded at the occipital pole); 24 areas per hemisphere.
AREAS = (
    "V1", "V2", "V3", "V4", "MT", "MST", "FFC", "PIT", "LO1", "LO2", "A1", "LBelt",
    "MBelt", "PBelt", "STSdp", "STSda", "STSvp", "TPOJ1", "44", "45", "55b", "FEF", "4", "3b",
)  # fmt: skip
# Vertices within this angle of the medial pole of the sphere form the medial wall.
MEDIAL_WALL_DEG = 22.0


def _hemisphere_labels(hemi: str) -> np.ndarray:
    """Area index per fsaverage5 vertex of ``hemi`` (-1: medial wall) ``[10242]``."""
    from nilearn import datasets

    mesh = datasets.load_fsaverage("fsaverage5")
    part = "left" if hemi == "lh" else "right"
    sphere = np.asarray(mesh["sphere"].parts[part].coordinates, dtype=np.float64)
    pial = np.asarray(mesh["pial"].parts[part].coordinates, dtype=np.float64)
    unit = sphere / np.linalg.norm(sphere, axis=1, keepdims=True)
    medial = np.array([1.0, 0.0, 0.0]) if hemi == "lh" else np.array([-1.0, 0.0, 0.0])
    wall = unit @ medial > np.cos(np.deg2rad(MEDIAL_WALL_DEG))
    # Farthest-point seeds from the occipital pole (most posterior pial vertex): V1 there.
    candidates = np.flatnonzero(~wall)
    seeds = [int(candidates[np.argmin(pial[candidates, 1])])]
    dist = 1.0 - unit[candidates] @ unit[seeds[0]]
    for _ in AREAS[1:]:
        seeds.append(int(candidates[np.argmax(dist)]))
        dist = np.minimum(dist, 1.0 - unit[candidates] @ unit[seeds[-1]])
    labels = np.argmax(unit @ unit[seeds].T, axis=1).astype(np.int32)
    labels[wall] = -1
    return labels


def write_synthetic_atlas(out_dir: Path) -> Path:
    """Write ``{lh,rh}.HCP-MMP1.annot`` (synthetic, HCP-style names) into ``out_dir``."""
    import nibabel as nib

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for hemi, prefix in (("lh", "L"), ("rh", "R")):
        labels = _hemisphere_labels(hemi) + 1  # 0 is "???" (medial wall)
        names = ["???"] + [f"{prefix}_{area}_ROI" for area in AREAS]
        colors = rng.integers(0, 256, size=(len(names), 3))
        ctab = np.column_stack([colors, np.zeros(len(names), dtype=int)]).astype(np.int32)
        final = out_dir / f"{hemi}.HCP-MMP1.annot"
        tmp = final.with_name(f".{final.name}.tmp")
        nib.freesurfer.write_annot(str(tmp), labels, ctab, names, fill_ctab=True)
        tmp.replace(final)
    return out_dir


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: write the synthetic atlas into OUT_DIR."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    print(write_synthetic_atlas(args.out_dir))


if __name__ == "__main__":
    main()
