#!/usr/bin/env bash
# Run ON THE GPU MACHINE (the `device` tool: `run` with carry [".whl"], command `bash scripts/device/run.sh STEP...`):
# installs the carried wheels, then runs the named steps in order, each under its own time limit, writing each
# step's JSON to $OUT/<step>.json and everything else to $OUT/log.txt (the tool brings back at most 8 files). Steps (default: all, in this order, most wanted first):
#   env      nvidia-smi, versions, hwaccel types of PyAV's FFmpeg
#   gputest  pytest -m gpu (every CUDA path the benchmarks use)
#   stages   bench stages --device cuda at batch 1, 4, 16 with the 4B VLM and the speed variants side by side
#   ingest   bench ingest with and without hwaccel cuda on the generated 1080p clip
#   student  bench student --device cuda
#   share    bench train-share --device cuda --train-device 0 (needs `wheels.sh train`: a call of its own)
# A step that fails or runs out of time is logged and the next one runs. STAGES_VARIANTS overrides the variants.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/streamlabel-device-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 YOLO_OFFLINE=1
LOG=$OUT/log.txt
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  >>"$LOG" 2>&1 || { echo "wheel install failed"; tail -20 "$LOG"; exit 1; }
SL="python3 -m streamlabel.cli"
VARIANTS=${STAGES_VARIANTS:-"ground640:models.ground.input_short_side_px=640 ground480:models.ground.input_short_side_px=480 compiled:models.compile=default fp16:models.dtype=float16"}

step() {  # step NAME SECONDS COMMAND...: run it; its last stdout line is NAME.json when it is JSON; the rest to LOG
  local name=$1 limit=$2; shift 2
  local start=$SECONDS out=/tmp/step-$name.out
  echo "== $name: $*" >>"$LOG"
  timeout "$limit" "$@" >"$out" 2>>"$LOG"
  local rc=$?
  echo "== $name: rc $rc in $((SECONDS - start)) s" | tee -a "$LOG"
  if python3 -c 'import json,sys; json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])' "$out" 2>/dev/null; then
    tail -1 "$out" >"$OUT/$name.json"; cat "$OUT/$name.json"; echo
  else
    cat "$out" >>"$LOG"; tail -25 "$out"; tail -15 "$LOG"
  fi
}

run_env() {
  nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 - <<'PY'
import importlib.metadata as m, torch, av
from av.codec.hwaccel import hwdevices_available
print({n: m.version(n) for n in ("torch", "transformers", "ultralytics", "sam2", "av", "supervision", "pydantic")})
print("cuda", torch.version.cuda, torch.cuda.get_device_name(0), "| PyAV hwaccel types:", hwdevices_available())
PY
}

variant_args=()
for v in $VARIANTS; do variant_args+=(--variant "$v"); done
for s in "${@:-env gputest stages ingest student share}"; do
  for name in $s; do
    case $name in
      env) step env 60 bash -c "$(declare -f run_env); run_env" ;;
      gputest) step gputest 300 python3 -m pytest -m gpu -q -p no:cacheprovider tests/stages tests/bench ;;
      stages) step stages 420 $SL bench stages --device cuda --batches 1,4,16 --repeats 5 --json "${variant_args[@]}" ;;
      ingest) step ingest 120 $SL bench ingest --hwaccel cuda --json ;;
      student) step student 240 $SL bench student --device cuda --json ;;
      share) step share 300 $SL bench train-share --device cuda --train-device 0 --json ;;
      *) echo "unknown step $name (env gputest stages ingest student share)"; exit 2 ;;
    esac
  done
done
