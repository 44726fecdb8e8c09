"""The stage 2 YAML (conf/tokenize/*.yaml): what `svslm.tokenize.pipeline.run_tokenize` does, with
the codec's and the SSL tokenizer's settings (CodecConfig, SSLConfig, also saved as
dump/tokenizers/{codec,ssl}/config.yaml)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class CodecConfig:
    backend: Literal["mini", "espnet"] = "mini"  # mini: fitted here on the training audio; espnet: ESPnet-Codec DAC checkpoint
    codebook_size: int = 1024  # codes per codebook (mini fits this many; espnet checks its checkpoint has it)
    max_fit_frames: int = 200000  # mini: frames sampled from the training audio to fit the codebooks (0 = all)
    kmeans_batch_size: int = 4096  # mini: MiniBatchKMeans batch size
    kmeans_n_init: int = 3  # mini: k-means restarts per codebook, the best kept
    seed: int = 0  # mini: seed of the frame sample and of k-means
    griffin_lim_iters: int = 32  # mini: Griffin-Lim iterations of the decoder
    model_file: str = ""  # espnet: the codec checkpoint (.pth)
    config_file: str = ""  # espnet: the codec's training config.yaml
    device: str = "auto"  # espnet: torch device of the codec (auto = CUDA when present; svslm.utils.device)


@dataclass
class SSLConfig:
    backend: Literal["mini", "hubert", "xeus"] = "mini"  # feature extractor (see the module docstring)
    n_clusters: int = 5000  # k-means size = SSL vocabulary (5000 in the paper)
    layer: int = 18  # hubert/xeus: which hidden state (the module docstring says how each backend counts)
    model_path: str = ""  # hubert: a transformers model directory; xeus: the checkpoint .pth
    config_path: str = ""  # xeus: the model's config.yaml (required: its key names must match the checkpoint)
    # A k-means fitted elsewhere (joblib, like ESPnet's km_5000.mdl) used instead of fitting one:
    # the paper's SSL ids must be those the pretrained LM was trained with.
    kmeans_path: str = ""
    n_mfcc: int = 13  # mini: cepstral coefficients before deltas
    max_fit_frames: int = 200000  # frames sampled from the training split to fit k-means (0 = all)
    kmeans_batch_size: int = 10000  # MiniBatchKMeans batch size
    kmeans_n_init: int = 3  # k-means restarts, the best kept
    seed: int = 0  # seed of the frame sample and of k-means
    device: str = "auto"  # hubert/xeus: torch device (auto = CUDA when present; svslm.utils.device)


@dataclass
class SvsLbConfig:
    layout: Literal["frame", "fork"] = "frame"  # frame: drift-free, 2 tokens per frame; fork: the paper's fork (placeholders, per-phone rounding)
    max_mismatch: int = 2  # frames a score may differ from its audio before the utterance is bad


@dataclass
class TokenizeConfig:
    splits: list[str] = field(default_factory=lambda: ["train", "dev", "test"])  # data/<split> directories to tokenize
    fit_split: str = "train"  # the split the codec and SSL k-means are fitted on
    svs_lb: SvsLbConfig = field(default_factory=SvsLbConfig)  # score tokens
    codec: CodecConfig = field(default_factory=CodecConfig)  # codec tokenizer
    ssl: SSLConfig = field(default_factory=SSLConfig)  # SSL tokenizer
    prompt_frames: int = 500  # speaker prompt length in frames (500 in the paper)
    prompt_seed: int = 0  # seed of the prompt choice
    shard_size: int = 100  # utterances per shard (the unit of parallel work and of resuming)
    skip_bad: bool = False  # false: fail listing every bad utterance; true: continue without them
