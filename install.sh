#!/usr/bin/env bash
# Install svslm into ./venv (created if missing). Usage: ./install.sh [--espnet]
#   --espnet  also ESPnet 202511 (ESPnet-Codec, XEUS, OWSM) for the paper's stage 2 and PER; see README.
# Re-running is safe: every step is a pinned pip install or a check, and the script stops at the
# first failure with the failing command's output.
set -euo pipefail
cd "$(dirname "$0")"
with_espnet=false
case "${1:-}" in
    "") ;;
    --espnet) with_espnet=true ;;
    *) echo "usage: $0 [--espnet]" >&2; exit 2 ;;
esac
trap 'echo "install.sh: FAILED at line ${LINENO}: ${BASH_COMMAND}" >&2' ERR

if [ -L venv ]; then
    echo "install.sh: ./venv is a symlink to $(readlink venv); remove it to install here" >&2
    exit 1
fi
python3 -m venv venv
. venv/bin/activate
site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
# DeepSpeed compiles its CUDA/C++ ops lazily; building none at install time works on CPU machines.
export DS_BUILD_OPS=0
pip install --upgrade "pip>=23" "setuptools<81" wheel
pip install torch==2.13.0
pip install -e ".[dev]"

# fastdtw's C extension (MCD's DTW in C rather than pure Python) is built only from source, without build
# isolation (numpy and cython must be visible) and not from pip's cache, which may hold a wheel
# an isolated build made without it. Its setup.py falls back to pure Python silently: check.
pip install cython
if ! python -c "import fastdtw._fastdtw" 2>/dev/null; then
    pip install --no-build-isolation --no-cache-dir --no-binary fastdtw --force-reinstall --no-deps "fastdtw==0.3.4"
fi
python -c "import fastdtw._fastdtw" || { echo "install.sh: fastdtw's C extension was not built (is a C++ compiler installed?)" >&2; exit 1; }

if $with_espnet || [ -d "${site}/espnet2" ]; then
    # ESPnet's own requirements do not resolve beside svslm (pypinyin<=0.44, setuptools<74, a
    # direct-URL dependency, a CUDA torch): install it without them, then the modules that
    # espnet2.tasks.{gan_codec,ssl} and espnet2.bin.s2t_inference import. `pip check` reports
    # the skipped pins; README says why that is fine.
    pip install --no-deps espnet==202511
    pip install "typeguard>=4,<5" humanfriendly configargparse einops torch_complex h5py jamo \
        "sentencepiece==0.2.0" espnet_tts_frontend hydra-core opt_einsum
    # gan_codec imports torchaudio; PyPI's wheel carries compiled ops built for another torch
    # (a CUDA build) that cannot load here. ESPnet's codec only uses torchaudio's pure-Python
    # transforms, so the compiled libraries are removed and torchaudio's Python part is kept.
    pip install --no-deps torchaudio==2.11.1
    rm -f "${site}"/torchaudio/lib/*.so
    python -c "import espnet2.tasks.gan_codec, espnet2.tasks.ssl, espnet2.bin.s2t_inference, espnet; print('espnet', espnet.__version__)"
else
    # torchaudio from PyPI cannot load beside this torch; a dependency that pulls it in (e.g.
    # torchcrepe) must not leave it installed, or `import` of it crashes.
    pip uninstall -y torchaudio >/dev/null 2>&1 || true
fi
# DeepSpeed's communication layer JIT-compiles a shared-memory op on its first CPU run (~45 s of
# stage 3 otherwise); build it now, into the venv's cache that path.sh points torch at.
export TORCH_EXTENSIONS_DIR="${PWD}/venv/torch_extensions"
python -c "from deepspeed.comm.torch import build_shm_op; build_shm_op()"
python -c "import svslm, torch, deepspeed, transformers, pyworld, pysptk; print('svslm installed; torch', torch.__version__)"
