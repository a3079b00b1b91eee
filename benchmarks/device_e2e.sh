#!/usr/bin/env bash
# The hour of film on the GPU machine through this workplace's device tool, whose
# commands stop after 10 minutes: call it repeatedly (carry .gpu_carry, made by
# benchmarks/gpu_wheels.sh) until it prints the table. The first call installs the
# carried wheels and ffmpeg, times the transcription stage (benchmarks/transcription.py,
# about a minute) and starts benchmarks/end_to_end.py (movie included) in its own session; every call
# then waits up to WAIT_S seconds (default 540) and copies what the runs wrote to $OUT.
#
#   device run: bash benchmarks/device_e2e.sh          (carry: [".gpu_carry"])
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/device_e2e_out}
mkdir -p "$OUT"
if [ ! -f /tmp/e2e.started ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu_carry/whl/*.whl || exit 3
  mkdir -p /tmp/bin && xz -dc .gpu_carry/bin/ffmpeg.xz >/tmp/bin/ffmpeg && chmod +x /tmp/bin/ffmpeg
  rm -rf /tmp/repo && cp -r . /tmp/repo
  touch /tmp/e2e.started
  cd /tmp/repo || exit 3
  export PYTHONPATH=/tmp/site PATH=/tmp/bin:$PATH
  timeout 240 python3 benchmarks/transcription.py --size full --minutes 10 \
    --json /tmp/transcription.json
  setsid nohup python3 benchmarks/end_to_end.py --size full --minutes "${MINUTES:-60}" \
    --gpu-jobs "${GPU_JOBS:-3}" --out /tmp/e2e_out >/tmp/e2e.log 2>&1 </dev/null &
  echo $! >/tmp/e2e.pid
  cd - >/dev/null || exit 3
fi
while [ "$SECONDS" -lt "${WAIT_S:-540}" ]; do
  [ -f /tmp/e2e_out/table.txt ] && break
  kill -0 "$(cat /tmp/e2e.pid)" 2>/dev/null || { echo "end_to_end.py is not running"; break; }
  sleep 5
done
cp /tmp/transcription.json /tmp/e2e_out/*.json /tmp/e2e_out/*.txt /tmp/e2e.log "$OUT"/ 2>/dev/null
nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv,noheader
ls /tmp/tribe-e2e-full/workflow/results/film/logs 2>/dev/null | tr '\n' ' '
echo
cat /tmp/e2e_out/table.txt 2>/dev/null || tail -c 2500 /tmp/e2e.log
