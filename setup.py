"""svslm: singing voice synthesis with a speech language model (an ESPnet-style recipe)."""
from setuptools import find_packages, setup

# torch is pinned exactly: a looser range pulls a multi-GB CUDA build from PyPI, while 2.13.0 is
# a CPU wheel available locally on the project's machines (and the version the code is tested on).
# setuptools < 81 keeps pkg_resources, which pyworld and webrtcvad (resemblyzer) still import.
install_requires = [
    "torch==2.13.0",
    "setuptools<81",
    "numpy>=1.24",
    "scipy>=1.10",
    "pyyaml>=6",
    "tqdm>=4.60",
    "soundfile>=0.12",
    "librosa>=0.10",
    "pyworld>=0.3.4",
    "pysptk>=1.0",
    "scikit-learn>=1.3",
    "kaldiio>=2.18",
    "transformers>=5,<6",
    "deepspeed>=0.19,<0.20",
    "tensorboard>=2.14",
    "matplotlib>=3.7",
    "editdistance>=0.8",
    "fastdtw>=0.3.4",
    "music21>=9",
    "pypinyin>=0.50",
    "mido>=1.3",
    "pyarrow>=14",
    "resemblyzer>=0.1.4",
    "speechmos>=0.0.1",
    "onnxruntime>=1.17",
    "requests",
]

extras_require = {
    "dev": ["pytest>=8", "pytest-timeout>=2", "pytest-xdist>=3", "ruff>=0.5"],
    # torchdiffeq's adaptive ODE solvers for flow sampling; Euler and midpoint are built in.
    "flow": ["torchdiffeq>=0.2"],
    # No `espnet` extra: ESPnet's own requirements cannot resolve beside svslm's (pypinyin <= 0.44,
    # setuptools < 74, a direct-URL dependency). `./install.sh --espnet` installs ESPnet 202511
    # without them and adds what its codec, SSL and speech-to-text code imports.
}

setup(
    name="svslm",
    version="0.1.0",
    description="Singing voice synthesis with a speech language model, codec flow matching and HiFi-GAN",
    python_requires=">=3.11",
    packages=find_packages(include=["svslm", "svslm.*"]),
    package_data={"svslm": ["py.typed"]},
    install_requires=install_requires,
    extras_require=extras_require,
    entry_points={"console_scripts": ["svslm=svslm.cli:main"]},
)
