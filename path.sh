# Environment for the recipe scripts: source it from run.sh or a shell.
SVSLM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -f "${SVSLM_ROOT}/venv/bin/activate" ]; then
    . "${SVSLM_ROOT}/venv/bin/activate"
    # DeepSpeed's JIT-built ops (install.sh builds the CPU one) belong to this venv's torch: kept
    # beside it, a second venv on the machine neither rebuilds nor overwrites them.
    export TORCH_EXTENSIONS_DIR="${TORCH_EXTENSIONS_DIR:-${SVSLM_ROOT}/venv/torch_extensions}"
fi
export PYTHONPATH="${SVSLM_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
export PYTHONIOENCODING=UTF-8
# One thread per process by default: stages run --nj processes side by side, and on a small or
# shared machine oversubscribed BLAS threads made the LM stage ~3x slower (bench/results/lm.md).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
# Weights never come from a hub at run time: every model path is explicit.
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
