#!/usr/bin/env bash
# Text-feature figures on the GPU machine (device tool, carry .gpu_carry from
# benchmarks/gpu_wheels.sh): peak host memory of loading a bf16-stored model of
# Llama-3.2-3B's width and depth in float16 (benchmarks/model_load.py), then the
# text benchmark in the sliding-window regime (1,024 earlier words) in float32
# (exactness) and float16, and the growing-context regime (300 s) in float32.
# Every result is a JSON file under $OUT.
#
#   device run: bash benchmarks/device_text.sh          (carry: [".gpu_carry"])
set -euo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/device_text_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .gpu_carry/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/bin:$PATH
mkdir -p /tmp/bin && xz -dc .gpu_carry/bin/ffmpeg.xz >/tmp/bin/ffmpeg && chmod +x /tmp/bin/ffmpeg
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
python3 benchmarks/model_load.py --hidden 3072 --layers 28 --device cuda | tee "$OUT/model_load.txt"
bench() {  # NAME ARGS...
  local name=$1
  shift
  python3 -m tribe_core.features.bench --size full --device cuda --modalities text "$@" \
    --json "$OUT/text_$name.json" | tee "$OUT/text_$name.txt"
}
bench sliding_fp16 --dtype float16 --seconds 30 --text-history 1024
bench sliding_fp32 --dtype float32 --seconds 30 --text-history 1024
bench sliding_fp16_b16 --dtype float16 --seconds 30 --text-history 1024 --batch-size 16
bench growing_fp32 --dtype float32 --seconds 300
