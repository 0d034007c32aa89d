#!/usr/bin/env bash
# One prepared check for a lent GPU machine (H100; torch, numpy, scipy, scikit-image,
# matplotlib, tifffile; no napari, dask or pytest needed; nothing is downloaded).
#
#   DATA=benchmarks/data bash benchmarks/gpu_check.sh           # on the GPU machine, < 8 min
#   bash benchmarks/gpu_check.sh --cpu-dry-run                  # here: tiny sizes, CPU only
#
# Steps, each under its own `timeout` and none fatal to the others:
#   env          nvidia-smi, python/torch/CUDA versions
#   correctness  python -m benchmarks.gpu_correctness (bound, power vs exact, FBC cuda == cpu,
#                denoise improves, grouped == alone, seeded reproducible)
#   speed        python -m benchmarks.speed --gpu (paper vs default, time to result, levers, planes)
#   quality      python -m benchmarks.quality --gpu --data $DATA    (only if the file exists)
#   stability    python -m benchmarks.stability --gpu                (only if the file exists)
# Each step's output is tee'd to $OUT/<step>.log (OUT defaults to results/gpu_check); the
# summary table (step, status, seconds, key numbers = the step's `KEY ...` lines) comes last
# and is also written to $OUT/summary.txt.
set -u
cd "$(dirname "$0")/.."

DRY=0
if [[ "${1:-}" == "--cpu-dry-run" || "${GPU_CHECK_DRY_RUN:-0}" == "1" ]]; then DRY=1; fi
OUT="${OUT:-results/gpu_check}"
DATA="${DATA:-benchmarks/data}"
mkdir -p "$OUT"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python}"

if [[ $DRY == 1 ]]; then
    # seconds-long versions of every step, on the CPU
    export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    T_ENV=20 T_CORR=240 T_SPEED=400 T_QUAL=300 T_STAB=200
    CORR_ARGS=(--cpu)
    SPEED_ARGS=(--tiny --no-compile --sections profiles,time_to_result,planes)
    QUAL_ARGS=(--quick --device cpu --tasks denoise --iterations 5 --channels 8 --data "$DATA")
    STAB_ARGS=(--quick --device cpu)
else
    # budgets (s): 10 + 40 + 180 + 165 + 85 = 480 (8 min) at most
    T_ENV=10 T_CORR=40 T_SPEED=180 T_QUAL=165 T_STAB=85
    CORR_ARGS=()
    SPEED_ARGS=(--gpu --budget-s 130)
    QUAL_ARGS=(--gpu --data "$DATA")
    STAB_ARGS=(--gpu --budget-s 60)   # starts no new run after 60 s; the step times out at 85
fi

SUMMARY=()
run_step() {  # name budget_s command...
    local name=$1 budget=$2
    shift 2
    local log="$OUT/$name.log" start=$SECONDS rc status keys
    echo "=== $name (budget ${budget}s): $*" | tee "$log"
    timeout --kill-after=5 "$budget" "$@" 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
    case $rc in
        0) status=ok ;;
        124 | 137) status="TIMEOUT" ;;
        *) status="FAIL(rc=$rc)" ;;
    esac
    keys=$(grep '^KEY ' "$log" | cut -c5- | paste -sd ';' - | cut -c1-900)
    SUMMARY+=("$(printf '%-12s | %-12s | %5ss | %s' "$name" "$status" "$((SECONDS - start))" "${keys:--}")")
}
skip_step() {  # name reason
    SUMMARY+=("$(printf '%-12s | %-12s | %5ss | %s' "$1" "skipped" 0 "$2")")
}

run_step env "$T_ENV" bash -c "nvidia-smi || echo 'nvidia-smi: not available'; \
$PY -c 'import sys, torch; print(\"python\", sys.version.split()[0]); \
print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"cudnn\", torch.backends.cudnn.version()); \
print(\"KEY\", torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"no CUDA\", \
\"torch\", torch.__version__)'"

run_step correctness "$T_CORR" "$PY" -m benchmarks.gpu_correctness "${CORR_ARGS[@]}"

run_step speed "$T_SPEED" "$PY" -m benchmarks.speed "${SPEED_ARGS[@]}" --data "$DATA" \
    --json "$OUT/speed.json"

if [[ -f benchmarks/quality.py ]]; then
    run_step quality "$T_QUAL" "$PY" -m benchmarks.quality "${QUAL_ARGS[@]}"
else
    skip_step quality "benchmarks/quality.py not present"
fi

if [[ -f benchmarks/stability.py ]]; then
    run_step stability "$T_STAB" "$PY" -m benchmarks.stability "${STAB_ARGS[@]}"
else
    skip_step stability "benchmarks/stability.py not present"
fi

{
    echo
    echo "=== gpu_check summary ($([[ $DRY == 1 ]] && echo 'CPU DRY RUN' || echo GPU), $(date -u '+%Y-%m-%d %H:%M UTC'), ${SECONDS}s total)"
    printf '%-12s | %-12s | %6s | %s\n' step status time "key numbers"
    for line in "${SUMMARY[@]}"; do echo "$line"; done
} | tee "$OUT/summary.txt"
