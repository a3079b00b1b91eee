#!/usr/bin/env bash
# Text-feature figures on a GPU node (docs/benchmarks.md): peak host memory of loading a
# bf16-stored model of Llama-3.2-3B's width and depth in float16
# (benchmarks/model_load.py), then the text benchmark in the sliding-window regime
# (1,024 earlier words) in float32 (exactness) and float16, and the growing-context
# regime (300 s) in float32. Every result is a file under $OUT. Run it from the
# repository root:
#
#   bash benchmarks/device_text.sh
#   OUT=results_text PYTHON=.venv/bin/python bash benchmarks/device_text.sh
#
# Python: $PYTHON (default python3) with the project's packages. Optional: a .gpu_carry/
# folder made by benchmarks/gpu_wheels.sh (CARRY=path to use another), for a node
# without them: its wheels are installed into $WORK/site and its static ffmpeg put on
# PATH; without that folder the node's environment is used as it is.
set -euo pipefail
export PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
CARRY=${CARRY:-.gpu_carry}
WORK=${WORK:-${TMPDIR:-/tmp}/tribeflow-device-text}
OUT=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ -d "$CARRY/whl" ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$WORK/site" "$CARRY"/whl/*.whl
  export PYTHONPATH=$WORK/site:$PYTHONPATH
fi
if [ -f "$CARRY/bin/ffmpeg.xz" ]; then
  mkdir -p "$WORK/bin" && xz -dc "$CARRY/bin/ffmpeg.xz" >"$WORK/bin/ffmpeg"
  chmod +x "$WORK/bin/ffmpeg"
  export PATH=$WORK/bin:$PATH
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
"$PYTHON" benchmarks/model_load.py --hidden 3072 --layers 28 --device cuda | tee "$OUT/model_load.txt"
bench() {  # NAME ARGS...
  local name=$1
  shift
  "$PYTHON" benchmarks/features.py --size full --device cuda --modalities text "$@" \
    --json "$OUT/text_$name.json" | tee "$OUT/text_$name.txt"
}
bench sliding_fp16 --dtype float16 --seconds 30 --text-history 1024
bench sliding_fp32 --dtype float32 --seconds 30 --text-history 1024
bench sliding_fp16_b16 --dtype float16 --seconds 30 --text-history 1024 --batch-size 16
bench growing_fp32 --dtype float32 --seconds 300
