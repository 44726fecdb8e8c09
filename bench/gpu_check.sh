#!/usr/bin/env bash
# The CUDA paths of the recipe, checked on one GPU, with bench/results/gpu.md as the record.
#
#   bench/gpu_check.sh [--dry_run] [--work_dir DIR] [--skip_recipe] [--skip_probe] [--nj N]
#                      [--torch_adam auto|true|false]
#
# What it needs (checked first; it stops at the first error and shows that step's log):
# - one CUDA GPU that torch sees, >= 40 GB of memory for the 1.7B probe (ZeRO-2 FP16 on one GPU:
#   ~27 GB of weights, gradients and Adam states, plus activations); H100/H200-class for the
#   ~8 minutes it is sized for; nvidia-smi on PATH;
# - the svslm environment (./install.sh, then `. ./path.sh`) with a CUDA build of torch in place
#   of the CPU wheel, and deepspeed (DS_BUILD_OPS=0 is enough); no internet: the mini corpus is
#   generated and every model is made here;
# - nvcc + ninja for DeepSpeed's FusedAdam JIT build; without either the check runs the paper's
#   JSON with "torch_adam": true (the only change) and says so in gpu.md (--torch_adam true
#   forces that, false forbids it);
# - ~25 GB free disk under --work_dir (the probe writes a 1.7B checkpoint), 16 CPU cores help
#   stages 1, 2 and 6's scoring, which stay on the CPU.
# What it runs, in --work_dir (default bench/gpu_work, removed first):
# 1. the mini recipe (run.sh stages 1-6): stage 3 through the deepspeed launcher with
#    conf/deepspeed/paper_zero2_fp16.json; stages 4 (three flows) and 5 (the tiny vocoder,
#    1600 of its 3200 steps) under torchrun on the GPU in bf16; stage 3's decoding and stage
#    6's synthesis on the GPU;
# 2. bench/gpu_lm_probe.py: the paper-size LM (24 x 2048, OpusLM-size vocabulary): DeepSpeed
#    ZeRO-2 FP16 step time and peak memory at batch_bins 4000 with activation checkpointing, and
#    KV-cache decoding frames/s at batch 1 and 16;
# 3. bench/gpu_report.py: bench/results/gpu.md from the step times, the probe and RESULTS.md.
# --dry_run prints every command it would run and runs none (no GPU needed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

dry_run=false; work_dir=${ROOT}/bench/gpu_work; skip_recipe=false; skip_probe=false; nj=8; torch_adam=auto
while [ $# -gt 0 ]; do
    case "$1" in
        --dry_run) dry_run=true; shift ;;
        --work_dir) work_dir=$2; shift 2 ;;
        --skip_recipe) skip_recipe=true; shift ;;
        --skip_probe) skip_probe=true; shift ;;
        --nj) nj=$2; shift 2 ;;
        --torch_adam) torch_adam=$2; shift 2 ;;
        *) echo "$0: unknown option $1 (see the header)" >&2; exit 1 ;;
    esac
done
logs=${work_dir}/logs
timings=${work_dir}/timings.tsv

# step NAME CMD...: print CMD; unless --dry_run, run it with its output in logs/NAME.log and its
# wall time in timings.tsv; on failure show the log's tail and stop.
step() {
    local name=$1; shift
    echo "+ $(printf '%q ' "$@")  # ${name}"
    ${dry_run} && return 0
    local start=${SECONDS}
    if ! "$@" > "${logs}/${name}.log" 2>&1; then
        echo "FAILED: ${name}; last lines of ${logs}/${name}.log:" >&2
        tail -c 200000 "${logs}/${name}.log" | tr '\r' '\n' | grep -v '%|' | tail -n 40 >&2
        exit 1
    fi
    printf '%s\t%s\n' "${name}" "$(( SECONDS - start ))" >> "${timings}"
}

if ! ${dry_run}; then
    rm -rf "${work_dir}"; mkdir -p "${logs}"; : > "${timings}"
    . "${ROOT}/path.sh"
fi
step check_cuda python -c 'import torch; assert torch.cuda.is_available(), "torch sees no CUDA GPU"; print(torch.cuda.get_device_name(), torch.version.cuda)'
step check_deepspeed python -c 'import deepspeed; print(deepspeed.__version__)'
step nvidia_smi nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# The paper's DeepSpeed JSON, as it is when FusedAdam can be built, else with torch's Adam.
ds_json=${ROOT}/conf/deepspeed/paper_zero2_fp16.json
if [ "${torch_adam}" = auto ]; then
    torch_adam=true; command -v nvcc >/dev/null 2>&1 && command -v ninja >/dev/null 2>&1 && torch_adam=false
fi
if ${torch_adam}; then
    ds_json=${work_dir}/paper_zero2_fp16_torch_adam.json
    step torch_adam_json python -c 'import json, sys; ds = json.load(open(sys.argv[1])); ds["optimizer"]["params"]["torch_adam"] = True; json.dump(ds, open(sys.argv[2], "w"), indent=2)' \
        "${ROOT}/conf/deepspeed/paper_zero2_fp16.json" "${ds_json}"
fi

cuda_bf16="--override train.device=cuda train.precision=bf16"
if ! ${skip_recipe}; then
    recipe=(env -C "${work_dir}" "${ROOT}/run.sh" --nj "${nj}")
    step recipe_stage1_2 "${recipe[@]}" --stage 1 --stop_stage 2
    step recipe_stage3 "${recipe[@]}" --stage 3 --stop_stage 3 --gpus 1 \
        --lm_args "--override train.deepspeed_config=${ds_json}" --decode_args "--device cuda"
    step recipe_stage4 "${recipe[@]}" --stage 4 --stop_stage 4 --gpus 1 --flow_args "${cuda_bf16}"
    step recipe_stage5 "${recipe[@]}" --stage 5 --stop_stage 5 --gpus 1 \
        --vocoder_args "${cuda_bf16} train.max_steps=1600 train.num_workers=4"
    step recipe_stage6 "${recipe[@]}" --stage 6 --stop_stage 6 --gpus 1 --infer_args "--override device=cuda"
fi
if ! ${skip_probe}; then
    step lm_probe env OMP_NUM_THREADS="$(nproc)" python "${ROOT}/bench/gpu_lm_probe.py" --override "train.deepspeed_config=${ds_json}" \
        --out "${work_dir}/probe.json"
fi
step report python "${ROOT}/bench/gpu_report.py" --work_dir "${work_dir}" --ds_json "${ds_json}" \
    --out "${ROOT}/bench/results/gpu.md"
${dry_run} || echo "wrote ${ROOT}/bench/results/gpu.md"
