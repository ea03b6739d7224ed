#!/usr/bin/env bash
# What LowDINO does on one NVIDIA GPU, within 8 minutes including the install, as JSON lines.
#
#   bash benchmarks/gpu_check.sh                  # on the GPU machine, from the repository root
#   bash benchmarks/gpu_check.sh --dry-run        # anywhere: the same steps on the CPU, tiny sizes, no install
#
# Options: --dry-run; --python PY (use this interpreter as it is, no install); --out DIR (logs, runs and
# results.jsonl; default /tmp/lowdino-gpu-check).
#
# Steps, each printed as one JSON line (and appended to DIR/results.jsonl):
#   install     a venv in DIR/venv, `pip install torch==2.14.1 torchvision==0.29.1` (wheels already on
#               disk), then `pip install -e .[server,dev,export]`
#   gpu-tests   pytest -m gpu (tests that need CUDA; they skip without it)
#   bf16        lowdino pretrain --device cuda --precision bf16 (autocast); train.log must say bf16
#   dataparallel lowdino pretrain --device cuda --device-ids 0 (nn.DataParallel over the one device)
#   torchrun    torchrun --nproc_per_node 1 -m lowdino pretrain --device cuda (DDP, NCCL)
#   speed       benchmarks/gpu_speed.py for mobilevit_s and resnet5m at 32 px and 224 px: pipeline
#               images/s, model-alone images/s and their ratio
# A failed step is reported and the others still run; the exit status is 1 if any failed.
# --dry-run swaps cuda for cpu (torchrun then uses gloo), shrinks every size, and skips the install.

set -uo pipefail

DRY_RUN=0
PY=""
OUT=/tmp/lowdino-gpu-check
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --python) PY="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1; see --help" >&2; exit 2 ;;
    esac
    shift
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 2
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
FAILED=0
STARTED=$(date +%s)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

emit() {  # one JSON line to stdout and to results.jsonl
    echo "$1" | tee -a "$RESULTS"
}

# step NAME TIMEOUT_S COMMAND...: runs COMMAND with its output in DIR/NAME.log; reports ok and seconds.
step() {
    local name="$1" limit="$2"
    shift 2
    local begin rc
    begin=$(date +%s)
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    local ok=true
    if [ "$rc" -ne 0 ]; then ok=false; FAILED=$((FAILED + 1)); fi
    emit "{\"step\": \"$name\", \"ok\": $ok, \"exit\": $rc, \"seconds\": $(( $(date +%s) - begin )), \"log\": \"$OUT/$name.log\"}"
    return "$rc"
}

# check NAME CONDITION_TEXT COMMAND...: a step's follow-up assertion, reported the same way.
check() {
    local name="$1" what="$2"
    shift 2
    if "$@" >> "$OUT/$name.log" 2>&1; then
        emit "{\"check\": \"$name\", \"ok\": true, \"what\": \"$what\"}"
    else
        FAILED=$((FAILED + 1))
        emit "{\"check\": \"$name\", \"ok\": false, \"what\": \"$what\"}"
    fi
}

if [ "$DRY_RUN" = 1 ]; then
    DEVICE=cpu
    PY="${PY:-$ROOT/.venv/bin/python}"
    TINY=(--synthetic-size 64 -b 8 --global-crop-size 32 --local-crop-size 16 --max-steps 4)
    # backbone global local batch, for the "32 px" and "224 px" rows
    SPEED_ROWS=("32:16:8:8" "224:32:16:8")
    SPEED_STEPS=(--max-steps 8 --model-steps 2 --synthetic-size 64)
    emit "{\"step\": \"install\", \"skipped\": \"dry run: would run pip install torch==2.14.1 torchvision==0.29.1, then pip install -e .[server,dev,export]\"}"
else
    DEVICE=cuda
    TINY=(--synthetic-size 1024 -b 64 --global-crop-size 32 --local-crop-size 16 --max-steps 20)
    SPEED_ROWS=("32:32:16:256" "224:224:96:128")
    SPEED_STEPS=(--max-steps 30 --model-steps 15 --synthetic-size 4096)
    if [ -z "$PY" ]; then
        python3 -m venv "$OUT/venv" && PY="$OUT/venv/bin/python"
        step install 300 bash -c "'$PY' -m pip install -q torch==2.14.1 torchvision==0.29.1 && '$PY' -m pip install -q -e '.[server,dev,export]'"
    fi
    emit "{\"gpu\": \"$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)\"}"
fi

step gpu-tests 180 "$PY" -m pytest -q -m gpu -p no:cacheprovider --basetemp="$OUT/pytest" tests
check gpu-tests "tests ran (not all skipped) when a GPU is present" \
    bash -c "[ '$DEVICE' = cpu ] || ! grep -q ' skipped' '$OUT/gpu-tests.log' || grep -q ' passed' '$OUT/gpu-tests.log'"

PRETRAIN=(-m lowdino pretrain --backbone mobilevit_xxs --dataset synthetic "${TINY[@]}" -o 1024
          --no-knn-monitor --device "$DEVICE")
rm -rf "$OUT/runs"
step bf16 150 "$PY" "${PRETRAIN[@]}" --precision bf16 --output-dir "$OUT/runs/bf16"
check bf16 "train.log says bf16 autocast on $DEVICE" grep -q "on $DEVICE.*(bf16," "$OUT/runs/bf16/train.log"

step dataparallel 150 "$PY" "${PRETRAIN[@]}" --device-ids 0 --output-dir "$OUT/runs/dataparallel"
check dataparallel "the run completed" grep -q '"status": "completed"' "$OUT/runs/dataparallel/summary.json"

step torchrun 180 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 \
    "${PRETRAIN[@]}" --output-dir "$OUT/runs/torchrun"
check torchrun "the run completed under torchrun" grep -q '"status": "completed"' "$OUT/runs/torchrun/summary.json"

for backbone in mobilevit_s resnet5m; do
    for row in "${SPEED_ROWS[@]}"; do
        IFS=: read -r label global local batch <<< "$row"
        name="speed-$backbone-${label}px"
        if step "$name" 240 "$PY" benchmarks/gpu_speed.py --backbone "$backbone" --global-crop-size "$global" \
            --local-crop-size "$local" --batch-size "$batch" --device "$DEVICE" --precision auto \
            "${SPEED_STEPS[@]}"; then
            emit "$(tail -n 1 "$OUT/$name.log")"
        fi
    done
done

emit "{\"gpu_check\": \"done\", \"dry_run\": $([ "$DRY_RUN" = 1 ] && echo true || echo false), \"failed\": $FAILED, \"seconds\": $(( $(date +%s) - STARTED )), \"results\": \"$RESULTS\"}"
[ "$FAILED" -eq 0 ]
