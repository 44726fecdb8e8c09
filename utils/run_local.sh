#!/usr/bin/env bash
# Run a command on this machine, once or as a job array (the design of Kaldi/ESPnet's run.pl).
#
#   utils/run_local.sh [options] [JOB=1:N] LOG COMMAND...
#
# With JOB=1:N, COMMAND runs N times side by side, the word JOB in LOG and COMMAND replaced by
# 1..N; each job's output goes to its own LOG, which starts with the command and ends with
# "# ended <date>, status <rc>". Exits 0 when every job succeeded, else 1 after naming the
# failed jobs' logs. Re-running an array re-runs every job: the stages skip the work units a
# job already finished, so only what a killed or failed job left undone is done again.
# Options (cmd.sh passes them; --config is accepted for symmetry with the cluster runners):
#   --max_jobs_run N   jobs at a time (default: all)
#   --gpu N            GPUs per job: job J sees GPU (J-1) mod <GPUs on this machine> through
#                      CUDA_VISIBLE_DEVICES (N > 1: that many consecutive GPUs)
#   --num_threads N    OMP/MKL threads per job (default: the environment's)
#   --mem X, --time X, --config FILE   ignored here (cluster options)
set -uo pipefail

max_jobs_run=0; gpu=0; num_threads=
while [ $# -gt 0 ]; do
    case "$1" in
        --max_jobs_run) max_jobs_run=$2; shift 2 ;;
        --gpu) gpu=$2; shift 2 ;;
        --num_threads) num_threads=$2; shift 2 ;;
        --mem|--time|--config) shift 2 ;;
        --*) echo "$0: unknown option $1" >&2; exit 1 ;;
        *) break ;;
    esac
done
first=1; last=1; array=false
if [[ "${1:-}" =~ ^JOB=([0-9]+):([0-9]+)$ ]]; then
    first=${BASH_REMATCH[1]}; last=${BASH_REMATCH[2]}; array=true; shift
fi
[ $# -ge 2 ] || { echo "usage: $0 [options] [JOB=1:N] LOG COMMAND..." >&2; exit 1; }
log_template=$1; shift
n_gpus=0
if [ "${gpu}" -gt 0 ] && command -v nvidia-smi >/dev/null 2>&1; then
    n_gpus=$(nvidia-smi -L | grep -c '^GPU')
fi

# job J: the command with JOB replaced (word by word, so quoting survives), output to its log.
run_one() {
    local j=$1; shift
    local log=${log_template//JOB/$j} words=() w
    for w in "$@"; do words+=("${w//JOB/$j}"); done
    mkdir -p "$(dirname "${log}")"
    {
        echo "# ${words[*]}"
        echo "# started $(date '+%Y-%m-%dT%H:%M:%S') on $(hostname)"
    } > "${log}"
    (
        if [ "${n_gpus}" -gt 0 ]; then
            devices=()
            for k in $(seq 0 $(( gpu - 1 ))); do devices+=($(( ((j - 1) * gpu + k) % n_gpus ))); done
            export CUDA_VISIBLE_DEVICES=$(IFS=,; echo "${devices[*]}")
        fi
        [ -n "${num_threads}" ] && export OMP_NUM_THREADS=${num_threads} MKL_NUM_THREADS=${num_threads}
        "${words[@]}"
    ) >> "${log}" 2>&1
    local rc=$?
    echo "# ended $(date '+%Y-%m-%dT%H:%M:%S'), status ${rc}" >> "${log}"
    return ${rc}
}

pids=(); jobs_of=()
for j in $(seq "${first}" "${last}"); do
    while [ "${max_jobs_run}" -gt 0 ] && [ "$(jobs -rp | wc -l)" -ge "${max_jobs_run}" ]; do
        wait -n || true
    done
    run_one "${j}" "$@" &
    pids+=($!); jobs_of+=("${j}")
done
failed=()
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed+=("${jobs_of[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
    if ${array}; then
        echo "$0: ${#failed[@]} of $(( last - first + 1 )) jobs failed; logs: $(for j in "${failed[@]}"; do printf '%s ' "${log_template//JOB/$j}"; done)" >&2
    else
        echo "$0: failed; log: ${log_template}" >&2
    fi
    exit 1
fi
exit 0
