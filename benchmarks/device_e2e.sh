#!/usr/bin/env bash
# The hour of film (benchmarks/end_to_end.py) on a GPU node, resumable: for sessions
# whose commands are time-limited (an interactive job, a batch step with a short
# limit). Run it from the repository root, again and again, until it prints the table.
# The first call starts end_to_end.py (movie included, the transcription's model work
# alongside on the same GPU) in its own session; every call then waits up to WAIT_S
# seconds (default 540) and copies what the run wrote to $OUT.
# A node with a plain shell and no time limit can run end_to_end.py directly instead.
#
#   bash benchmarks/device_e2e.sh
#   MINUTES=10 GPU_JOBS=3 WORK=/scratch/$USER/e2e OUT=results_e2e bash benchmarks/device_e2e.sh
#   E2E_ARGS="--no-reference" bash benchmarks/device_e2e.sh   # more end_to_end.py options
#
# Python: $PYTHON (default python3) with the project's packages. Optional: a .gpu_carry/
# folder made by benchmarks/gpu_wheels.sh (CARRY=path to use another), for a node
# without them: its wheels are installed into $WORK/site and its static ffmpeg put on
# PATH; without that folder the node's environment is used as it is.
set -u
export PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
case $PYTHON in */*) PYTHON=$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON") ;; esac
CARRY=${CARRY:-.gpu_carry}
WORK=${WORK:-${TMPDIR:-/tmp}/tribeflow-device-e2e}
OUT=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT"
if [ -d "$CARRY/whl" ]; then
  export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -f "$CARRY/bin/ffmpeg.xz" ]; then
  export PATH=$WORK/bin:$PATH
fi
if [ ! -f "$WORK/started" ]; then
  if [ -d "$CARRY/whl" ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$WORK/site" "$CARRY"/whl/*.whl || exit 3
  fi
  if [ -f "$CARRY/bin/ffmpeg.xz" ]; then
    mkdir -p "$WORK/bin" && xz -dc "$CARRY/bin/ffmpeg.xz" >"$WORK/bin/ffmpeg" \
      && chmod +x "$WORK/bin/ffmpeg" || exit 3
  fi
  # A copy of the repository (WORK must lie outside it), so edits to the checkout do not
  # reach a running benchmark; the venv, git data and outputs stay behind.
  rm -rf "$WORK/repo" && mkdir -p "$WORK/repo" || exit 3
  tar --exclude=./.git --exclude=./.venv --exclude=./.snakemake --exclude=./results \
    --exclude="./${CARRY#./}" -cf - . | tar -C "$WORK/repo" -xf - || exit 3
  touch "$WORK/started"
  atlas=()  # the copy leaves $CARRY behind: name its atlas folder, if any
  [ -d "$CARRY/atlas" ] && atlas=(--atlas-dir "$(cd "$CARRY/atlas" && pwd)")
  cd "$WORK/repo" || exit 3
  setsid nohup "$PYTHON" benchmarks/end_to_end.py --size full --minutes "${MINUTES:-60}" \
    --gpu-jobs "${GPU_JOBS:-3}" --work "$WORK/e2e" --out "$WORK/e2e_out" "${atlas[@]}" ${E2E_ARGS:-} \
    >"$WORK/e2e.log" 2>&1 </dev/null &
  echo $! >"$WORK/e2e.pid"
  cd - >/dev/null || exit 3
fi
while [ "$SECONDS" -lt "${WAIT_S:-540}" ]; do
  [ -f "$WORK/e2e_out/table.txt" ] && break
  kill -0 "$(cat "$WORK/e2e.pid")" 2>/dev/null || { echo "end_to_end.py is not running"; break; }
  sleep 5
done
cp "$WORK"/e2e_out/*.json "$WORK"/e2e_out/*.txt "$WORK"/e2e_out/*.log "$WORK/e2e.log" \
  "$OUT"/ 2>/dev/null
nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv,noheader
ls "$WORK/e2e/workflow/results/film/logs" 2>/dev/null | tr '\n' ' '
echo
cat "$WORK/e2e_out/table.txt" 2>/dev/null || tail -c 2500 "$WORK/e2e.log"
