#!/usr/bin/env bash
# One run that checks charlstm's GPU path for real (issue #18) and keeps everything it measured.
#
#   OUT=/tmp/gpu-check scripts/gpu_check.sh                                    # a CUDA machine, at most ~8 minutes
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_QUICK=1 OUT=/tmp/x scripts/gpu_check.sh     # the same steps, CPU, test size
#
# Steps, in order of what matters most; a step that fails, times out or does not fit in what is left
# of the budget is recorded and the run goes on (a step that needs a failed one is skipped):
#   env          python, torch, the device (and nvidia-smi where there is one)
#   install      charlstm with --no-deps --no-index into a temp folder: the machine's torch is not touched
#   cuda_tests   pytest -m cuda (the tests that skip without a GPU; on a GPU a skip counts as a failure)
#   bench        charlstm bench: training, sampling and tracing speed of the presets
#   target       charlstm bench --scaling at 3x512, batch 64/256/1024 (issue #7's shape), charlstm and bare cuDNN
#   data         charlstm data code --name stdlib (the Python standard library)
#   train        charlstm train stdlib --run gpu3m --time-budget 3m (autosize picks the model), then
#   eval, sample charlstm eval --json and charlstm sample on it
#   sample_b1    charlstm sample at batch 1, timed
#   sample_b256  charlstm sample -N 256, timed
#   amp_bf16     charlstm train --preset medium --batch-size 256 --precision bf16 for a fixed number of steps, and
#   amp_fp32     the same with --precision fp32: speed and validation bpc after equal steps
#   scaling_model, scaling_shape   charlstm bench --scaling: hidden size and layers; batch (to 8192) and seq len
#
# Results: $OUT/summary.txt (read this), $OUT/summary.json, $OUT/logs.tar.gz (every per-step file) and
# the per-step files in $OUT/logs/ (a log per step; bench JSON, pytest XML, each run's metrics.jsonl);
# all three are rewritten after every step, so a run cut short keeps what it had measured.
#
# Settings (environment):
#   OUT               required: the folder for the results (new or without earlier results)
#   GPU_CHECK_DEVICE  cuda (default), cuda:N or cpu
#   GPU_CHECK_QUICK   0 (default) or 1: tiny models, seconds-long budgets, 20 stdlib files
#   GPU_CHECK_PYTHON  the Python whose torch is used (default python3)
#   GPU_CHECK_BUDGET  seconds for the whole run (default 470)
#   GPU_CHECK_STEPS   run only these steps (names as above, space-separated; include the steps they need)
#   GPU_CHECK_LOGS    folder for the per-step files (default $OUT/logs; put it outside $OUT where only
#                     a few files can be carried back: $OUT then holds the two summaries and the archive)
# Datasets, checkpoints and the install go to a temp folder that is removed at the end; nothing is
# written into the repository. Exit status: 0 when every step is ok, 1 otherwise, 2 on bad settings.
set -euo pipefail
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 TQDM_DISABLE=1
unset CHARLSTM_QUIET  # the summary reads the commands' informational lines (timings, the final Run line)

die() { echo "gpu_check.sh: error: $*" >&2; exit 2; }

[ -n "${OUT:-}" ] || die "set OUT to the folder for the results, e.g. OUT=/tmp/gpu-check $0"
DEVICE=${GPU_CHECK_DEVICE:-cuda}
QUICK=${GPU_CHECK_QUICK:-0}
PY=${GPU_CHECK_PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-470}
ONLY=${GPU_CHECK_STEPS:-}
[[ "$DEVICE" =~ ^(cpu|cuda(:[0-9]+)?)$ ]] || die "GPU_CHECK_DEVICE must be cuda, cuda:N or cpu, got '$DEVICE'"
[[ "$QUICK" =~ ^[01]$ ]] || die "GPU_CHECK_QUICK must be 0 or 1, got '$QUICK'"
[[ "$BUDGET" =~ ^[0-9]+$ ]] || die "GPU_CHECK_BUDGET must be whole seconds, got '$BUDGET'"
ALL_STEPS=" env install cuda_tests bench target data train eval sample sample_b1 sample_b256 amp_bf16 amp_fp32 \
scaling_model scaling_shape "
for s in $ONLY; do [[ "$ALL_STEPS" == *" $s "* ]] || die "unknown step '$s' in GPU_CHECK_STEPS; the steps:$ALL_STEPS"; done
command -v "$PY" >/dev/null || die "no Python '$PY': set GPU_CHECK_PYTHON to the one that has torch"
command -v timeout >/dev/null || die "the timeout command (coreutils) is missing"

REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
LOGS=${GPU_CHECK_LOGS:-$OUT/logs}
mkdir -p "$LOGS" && LOGS=$(cd "$LOGS" && pwd)
[ -z "$(ls -A "$LOGS")" ] && [ ! -e "$OUT/summary.json" ] || die "$OUT already holds results: give a new or empty folder"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/charlstm-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export CHARLSTM_DATA=$WORK/data CHARLSTM_CHECKPOINTS=$WORK/checkpoints
cd "$WORK"  # so that python -m finds charlstm where PYTHONPATH says, not in the current folder
CL=("$PY" -m charlstm)
T0=$(date +%s)

# ------------------------------------------------------------------------------------------ sizes
if [ "$QUICK" = 1 ]; then
  BENCH=(--quick --presets tiny --threads 1)
  TARGET=(--quick --threads 1 --base num_layers=1 --base hidden_size=16 --base embed_dim=8 --base seq_len=16
          --axis batch_size=8)
  SCALING_BASE=(--quick --threads 1 --base num_layers=1 --base hidden_size=16 --base embed_dim=8 --base batch_size=4
                --base seq_len=16)
  SCALING_MODEL=(--axis hidden_size=32 --axis num_layers=2)
  SCALING_SHAPE=(--axis batch_size=8 --axis seq_len=8)
  DATA=(--max-files 20)
  TRAIN_BUDGET=10s TRAIN_MIN=20
  B1_CHARS=500 B256_CHARS=100
  AMP_STEPS=20
  AMP_MODEL=(--preset tiny --layers 1 --hidden 32 --embed 16 --batch-size 8 --seq-len 32)
else
  BENCH=(--presets small,medium,large)
  TARGET=(--base num_layers=3 --base hidden_size=512 --base embed_dim=64 --base seq_len=128
          --axis batch_size=64,256,1024)
  SCALING_BASE=(--quick)
  SCALING_MODEL=(--axis hidden_size=128,256,512,1024 --axis num_layers=1,2,3,4)
  SCALING_SHAPE=(--axis batch_size=8,32,128,512,2048,8192 --axis seq_len=25,50,100,200,400)
  DATA=()
  TRAIN_BUDGET=3m TRAIN_MIN=200
  B1_CHARS=20000 B256_CHARS=2000
  AMP_STEPS=300
  AMP_MODEL=(--preset medium --batch-size 256)
fi

# ------------------------------------------------------------------------------------------ steps
declare -A STATUS
STEP_NAMES=()
printf 'step\tstatus\texit\tseconds\tcommand\n' > "$LOGS/steps.tsv"

# summarize NAME: rewrite the summaries and the archive after step NAME. The summary also reads what the
# step wrote, so a step that exited 0 without its results becomes "failed: ..." here too.
summarize() {
  local status
  if status=$("$PY" "$REPO/scripts/gpu_check_summary.py" --logs "$LOGS" --out "$OUT" --device "$DEVICE" \
              --quick "$QUICK" --budget "$BUDGET" --elapsed $(( $(date +%s) - T0 )) --status-of "$1"); then
    [ "$status" = "${STATUS[$1]}" ] || echo "   $1: $status"
    STATUS[$1]=$status
  else
    echo "   (the summary could not be written)"
  fi
  tar czf "$OUT/logs.tar.gz.part" -C "$LOGS" . && mv "$OUT/logs.tar.gz.part" "$OUT/logs.tar.gz" ||
    echo "   (the archive could not be written)"
}

# step NAME MAX_SECONDS MIN_SECONDS NEEDS COMMAND...: run COMMAND (stdout and stderr to $LOGS/NAME.log)
# for at most MAX_SECONDS and what is left of the budget; skip it when less than MIN_SECONDS is left
# or when the step NEEDS (a name, or -) is not ok.
step() {
  local name=$1 max=$2 min=$3 needs=$4 rc=- secs= status
  shift 4
  local left=$(( BUDGET - ($(date +%s) - T0) ))
  [[ "$ALL_STEPS" == *" $name "* ]] || die "step '$name' is missing from ALL_STEPS"
  STEP_NAMES+=("$name")
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then
    status="skipped: not in GPU_CHECK_STEPS"
  elif [ "$needs" != - ] && [ "${STATUS[$needs]:-}" != ok ]; then
    status="skipped: needs $needs"
  elif (( left < min )); then
    status="skipped: ${left}s of the ${BUDGET}s budget left, needs ${min}s"
  else
    local limit=$(( max < left ? max : left )) start
    echo "== $name (at most ${limit}s): $*"
    start=$(date +%s.%N)
    if timeout -k 10 "$limit" bash -c 'set -euo pipefail; "$@"' step "$@" >"$LOGS/$name.log" 2>&1; then
      rc=0
    else
      rc=$?
    fi
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    case $rc in
      0) status=ok ;;
      124|137) status="timeout after ${limit}s" ;;
      *) status="failed (exit $rc)" ;;
    esac
  fi
  STATUS[$name]=$status
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "${secs:-0}" "$*" >> "$LOGS/steps.tsv"
  echo "   $name: $status${secs:+ (${secs}s)}"
}

# keep NAME RUN: copy a training run's config and metrics next to the step's log.
keep() {
  local d=$CHARLSTM_CHECKPOINTS/$2 f
  for f in metrics.jsonl config.json; do
    if [ -f "$d/$f" ]; then cp "$d/$f" "$LOGS/$1.$f" || true; fi  # if missing, the summary says so
  done
}

env_check() {  # the machine; fails when the asked-for device is not there
  command -v nvidia-smi >/dev/null && nvidia-smi || echo "(no nvidia-smi)"
  "$PY" - "$DEVICE" <<'EOF'
import json, os, platform, sys
import torch
device = sys.argv[1]
info = {"python": platform.python_version(), "executable": sys.executable, "torch": torch.__version__,
        "torch_file": torch.__file__, "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda,
        "cpus": os.cpu_count(), "device": device}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=p.name, gpu_count=torch.cuda.device_count(), gpu_memory_gb=round(p.total_memory / 2**30, 1),
                capability=f"{p.major}.{p.minor}", cudnn=torch.backends.cudnn.version())
print(json.dumps(info))
if device.startswith("cuda"):
    index = int(device.partition(":")[2] or 0)
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        sys.exit(f"error: {device} asked for, but this torch ({torch.__version__}) sees "
                 f"{torch.cuda.device_count() if torch.cuda.is_available() else 'no'} CUDA device(s)")
EOF
}

install_charlstm() {  # charlstm alone, from a copy of the source, into $WORK/site; torch stays the machine's
  rm -rf "$WORK/src" "$WORK/site" && mkdir -p "$WORK/src"
  cp -R "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/charlstm" "$WORK/src/"
  "$PY" -m pip install --no-deps --no-index --no-build-isolation --no-cache-dir --target "$WORK/site" "$WORK/src"
  PYTHONPATH=$WORK/site "$PY" - "$WORK/site" <<'EOF'
import importlib, importlib.metadata as md, json, os, sys
site = os.path.realpath(sys.argv[1])
import charlstm, torch
assert os.path.realpath(charlstm.__file__).startswith(site + os.sep), charlstm.__file__
assert not os.path.realpath(torch.__file__).startswith(site + os.sep), "torch was installed into the target"
need = {"numpy": "numpy", "tokenizers": "tokenizers", "click": "click", "tqdm": "tqdm", "safetensors": "safetensors"}
found, missing = {}, []
for module, dist in need.items():
    try:
        importlib.import_module(module)
        found[dist] = md.version(dist)
    except Exception:
        missing.append(dist)
try:
    found["datasets"] = md.version("datasets")
except md.PackageNotFoundError:
    found["datasets"] = None  # only `charlstm data ... --hub` needs it
print(json.dumps({"charlstm": charlstm.__version__, "charlstm_file": charlstm.__file__, "torch": torch.__version__,
                  "torch_file": torch.__file__, "packages": found, "missing": missing}))
sys.exit(f"error: missing {', '.join(missing)}" if missing else 0)
EOF
}

cuda_tests() {  # on a GPU a skipped CUDA test is a check that did not happen: fail
  local xml=$LOGS/cuda_tests.xml
  "$PY" -m pytest -q -rs -p no:cacheprovider --continue-on-collection-errors -m cuda --junitxml "$xml" "$REPO/tests"
  if [[ "$DEVICE" == cuda* ]] && grep -q 'skipped="[1-9]' "$xml"; then
    echo "error: CUDA tests were skipped on a CUDA run"
    return 1
  fi
}

export DEVICE PY REPO LOGS WORK
export -f env_check install_charlstm cuda_tests  # steps run them in a child bash, under timeout

step env 60 5 - env_check; summarize env
step install 120 5 env install_charlstm; summarize install
if [ "${STATUS[install]}" = ok ]; then export PYTHONPATH=$WORK/site; else export PYTHONPATH=$REPO; fi
step cuda_tests 180 30 env cuda_tests; summarize cuda_tests
step bench 180 60 env "${CL[@]}" bench --device "$DEVICE" "${BENCH[@]}" --json "$LOGS/bench.json"; summarize bench
step target 120 30 env "${CL[@]}" bench --scaling --device "$DEVICE" "${TARGET[@]}" --json "$LOGS/target.json"
summarize target
step data 120 5 env "${CL[@]}" data code --name stdlib "${DATA[@]}"; summarize data
step train 260 "$TRAIN_MIN" data "${CL[@]}" train stdlib --run gpu3m --time-budget "$TRAIN_BUDGET" --device "$DEVICE" --seed 1
keep train gpu3m; summarize train
step eval 90 10 train "${CL[@]}" eval gpu3m --device "$DEVICE" --json; summarize eval
step sample 60 10 train "${CL[@]}" sample gpu3m --device "$DEVICE" --prime "def " -n 400 -t 0.8 --seed 1
summarize sample
step sample_b1 90 10 train "${CL[@]}" sample gpu3m --device "$DEVICE" -n "$B1_CHARS" --seed 1 --no-stop-at-eot
summarize sample_b1
step sample_b256 90 10 train "${CL[@]}" sample gpu3m --device "$DEVICE" -N 256 -n "$B256_CHARS" --seed 1 --no-stop-at-eot
summarize sample_b256
for amp in bf16 fp32; do
  flag="--precision=$amp"
  step "amp_$amp" 120 30 data "${CL[@]}" train stdlib --run "amp-$amp" "${AMP_MODEL[@]}" --max-steps "$AMP_STEPS" \
    --eval-every "$AMP_STEPS" --seed 1 --device "$DEVICE" "$flag"
  keep "amp_$amp" "amp-$amp"; summarize "amp_$amp"
done
step scaling_model 150 30 env "${CL[@]}" bench --scaling --device "$DEVICE" "${SCALING_BASE[@]}" "${SCALING_MODEL[@]}" \
  --json "$LOGS/scaling_model.json"
summarize scaling_model
step scaling_shape 150 30 env "${CL[@]}" bench --scaling --device "$DEVICE" "${SCALING_BASE[@]}" "${SCALING_SHAPE[@]}" \
  --json "$LOGS/scaling_shape.json"
summarize scaling_shape

echo
cat "$OUT/summary.txt" || true
for name in "${STEP_NAMES[@]}"; do [ "${STATUS[$name]}" = ok ] || exit 1; done
