#!/usr/bin/env bash
# Optional: for a GPU node without network access that has a CUDA PyTorch stack but not
# the workflow's other packages. Run it where pip can download; it fills .gpu_carry/
# (git-ignored), which you copy to the node with the repository:
#   whl/        wheels for Python 3.12, manylinux x86_64 (pip install --no-index --target)
#   bin/ffmpeg.xz  imageio-ffmpeg's static ffmpeg 7.0.2, xz-compressed (21 MiB instead of
#               the 28 MiB wheel), for a node without ffmpeg: unpack it onto PATH
#   atlas/      the HCP-MMP1 annotations, copied from ATLAS_DIR when it is set
#
#   bash benchmarks/gpu_wheels.sh
#   ATLAS_DIR=~/mne_data/MNE-fsaverage-data/fsaverage/label bash benchmarks/gpu_wheels.sh
#   PYTHON_VERSION=3.11 DEST=/tmp/whl311 bash benchmarks/gpu_wheels.sh   # the same set for 3.11
#
# benchmarks/device_e2e.sh and benchmarks/device_text.sh install what is there when
# .gpu_carry exists. A node with the project's environment (`make demo`, or
# `pip install -r requirements.lock`) needs none of this.
#
# Assumed present on the node (not carried): torch, transformers, numpy, pandas, scipy,
# matplotlib, scikit-learn, pyyaml, jinja2, psutil, requests, wrapt, tabulate, attrs,
# nvidia-ml-py. Not carried either:
# - pulp (16 MiB of CBC binaries): the workflow runs with `--scheduler greedy`;
# - whisperx and its stack: the film's sidecar transcript replaces the recogniser;
# - spacy (35 MiB): sentence splitting falls back to tribe_core's regex splitter.
# Versions come from requirements.lock. The ffmpeg binary comes from imageio-ffmpeg 0.6.0
# (the lock's 0.8.1 ships ffmpeg 9.0.2: 165 MiB unpacked, 65 MiB as a wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=requirements.lock
DEST=${DEST:-.gpu_carry/whl}
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
IMAGEIO_FFMPEG=0.6.0
PACKAGES=(
    # snakemake 9 and what it imports
    snakemake snakemake-interface-common snakemake-interface-executor-plugins
    snakemake-interface-logger-plugins snakemake-interface-report-plugins
    snakemake-interface-scheduler-plugins snakemake-interface-storage-plugins
    argparse-dataclass ConfigArgParse conda-inject docutils dpath
    GitPython gitdb smmap humanfriendly immutables jsonschema jsonschema-specifications
    referencing rpds-py nbformat fastjsonschema jupyter_core traitlets platformdirs
    smart_open sqlmodel SQLAlchemy greenlet pydantic pydantic_core typing-inspection
    annotated-types tenacity throttler yte
    # feature stores, products, media
    zarr numcodecs donfig google-crc32c nibabel nilearn ffmpeg-python future julius
)

pinned() {  # NAME==VERSION from the lock, names compared as pip does (case, - _ .)
    local want line
    want=$(echo "$1" | tr 'A-Z_.' 'a-z--')
    while IFS= read -r line; do
        [[ $line == *==* ]] || continue
        if [[ $(echo "${line%%==*}" | tr 'A-Z_.' 'a-z--') == "$want" ]]; then
            echo "$line"
            return
        fi
    done <"$LOCK"
    echo "no pin for $1 in $LOCK" >&2
    return 1
}

specs=()
for name in "${PACKAGES[@]}"; do
    specs+=("$(pinned "$name")")
done
rm -rf "$DEST"
mkdir -p "$DEST"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$DEST" "${specs[@]}"
# Pure Python, published as an sdist only: built here into a py3-none-any wheel.
python3 -m pip wheel -q --no-deps --no-binary=:all: -w "$DEST" "$(pinned connection_pool)"

if [[ ! -f .gpu_carry/bin/ffmpeg.xz ]]; then
    tmp=$(mktemp -d)
    python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
        -d "$tmp" "imageio-ffmpeg==$IMAGEIO_FFMPEG"
    mkdir -p .gpu_carry/bin
    python3 -c 'import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
name = next(n for n in wheel.namelist() if "/binaries/ffmpeg-" in n)
sys.stdout.buffer.write(wheel.read(name))' "$tmp"/imageio_ffmpeg-*.whl | xz -9 -T0 >"$tmp/ffmpeg.xz"
    mv "$tmp/ffmpeg.xz" .gpu_carry/bin/ffmpeg.xz
    rm -rf "$tmp"
fi

# The HCP-MMP1 annotations are not redistributed here: copy them only from a folder
# the user names (lh.HCP-MMP1.annot / rh.HCP-MMP1.annot, or MNE's ?h.HCPMMP1.annot).
if [[ -n ${ATLAS_DIR:-} ]]; then
    mkdir -p .gpu_carry/atlas
    for hemi in lh rh; do
        if [[ -f $ATLAS_DIR/$hemi.HCP-MMP1.annot ]]; then
            cp "$ATLAS_DIR/$hemi.HCP-MMP1.annot" .gpu_carry/atlas/
        elif [[ -f $ATLAS_DIR/$hemi.HCPMMP1.annot ]]; then
            cp "$ATLAS_DIR/$hemi.HCPMMP1.annot" .gpu_carry/atlas/
        else
            echo "ATLAS_DIR=$ATLAS_DIR has no $hemi.HCP-MMP1.annot or $hemi.HCPMMP1.annot" >&2
            exit 1
        fi
    done
fi
echo "$(ls "$DEST" | wc -l) wheels in $DEST:"
du -sh "$DEST" .gpu_carry/bin .gpu_carry/atlas 2>/dev/null
