#!/usr/bin/env bash
# Install svslm into ./venv (created if missing). Usage: ./install.sh [--espnet]
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv venv
. venv/bin/activate
# DeepSpeed compiles its CUDA/C++ ops lazily; building none at install time works on CPU machines.
export DS_BUILD_OPS=0
pip install --upgrade "pip>=23" "setuptools<81" wheel
pip install torch==2.13.0
pip install -e ".[dev]"
# fastdtw builds its C extension only without build isolation (numpy and cython must be visible);
# in an isolated build it silently falls back to a slow pure-Python DTW.
pip install cython
pip install --no-build-isolation --force-reinstall --no-deps "fastdtw>=0.3.4"
if [ "${1:-}" = "--espnet" ]; then pip install -e ".[espnet]"; fi
# torchaudio from PyPI is a CUDA build that cannot load beside the CPU torch; a dependency that
# pulls it in (e.g. torchcrepe) must not leave it installed, or `import` of it crashes.
pip uninstall -y torchaudio >/dev/null 2>&1 || true
python -c "import svslm, torch, deepspeed, transformers, pyworld, pysptk; print('svslm installed; torch', torch.__version__)"
