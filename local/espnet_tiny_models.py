#!/usr/bin/env python3
"""Tiny random ESPnet-Codec, XEUS-like and OWSM-like models, built and saved by ESPnet's own code.

The real checkpoints cannot be downloaded here, so the espnet back ends of stage 2 and PER are
tested on models of the same classes and on-disk format, only small:
- codec/: `GANCodecTask` DAC at 16 kHz, encoder ratios 8*5*4*2 = 320 (50 fps), 8 x 1024 codebooks,
  as `ftshijt/espnet_codec_dac_large_v1.4_360epoch` (config.yaml + 1epoch.pth);
- ssl/: `SSLTask` HuBERT-style model as XEUS: wav2vec CNN front end (window 400, stride 320),
  linear pre-encoder, E-Branchformer blocks (config.yaml + 1epoch.pth), and km_<K>.mdl, a
  scikit-learn k-means (joblib, like ESPnet's learn_kmeans) fitted on its features;
- owsm/ (with --owsm): `S2TTask` attention encoder-decoder with OWSM's special tokens and a
  character token list (config.yaml + model.pth);
- tokenize.yaml: conf/tokenize/tiny.yaml with the codec and SSL switched to these (absolute paths),
  for `./run.sh --stage 2 --stop_stage 2 --tokenize_config <out_dir>/tokenize.yaml`.

The files are written as ESPnet's trainer writes them: `config.yaml` is the task's parsed
arguments (`vars(args)`), the model file the model's `state_dict()`.

    python local/espnet_tiny_models.py --out_dir exp/espnet_tiny [--owsm] [--seed 0]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

SAMPLE_RATE = 16000
# The wav2vec2/HuBERT/XEUS convolution stack (channels, kernel, stride): window 400, stride 320.
CNN_SHAPES = [(8, 10, 5), (8, 3, 2), (8, 3, 2), (8, 3, 2), (8, 3, 2), (8, 2, 2), (8, 2, 2)]
SSL_BLOCKS = 3
# ESPnet-SpeechLM's --ssl_nlayer indexing (from 0; the last entry after the final norm): the last
# block, as the paper's 18 is XEUS's last (19th) block.
SSL_LAYER = SSL_BLOCKS - 1
KMEANS_CLUSTERS = 32

OWSM_LANGS = ["<zho>", "<eng>"]
OWSM_TASKS = ["<asr>", "<st_eng>"]
OWSM_SECONDS = 4  # inputs are padded or cut to this (OWSM: 30 s)


def _save_espnet(directory: Path, args: argparse.Namespace, model: torch.nn.Module, model_name: str) -> None:
    """config.yaml + the state dict, as espnet2's trainer saves them."""
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "config.yaml", "w", encoding="utf-8") as f:
        yaml_no_alias_safe_dump(vars(args), f, indent=4, sort_keys=False)
    torch.save(model.state_dict(), directory / model_name)


def dac_args(n_q: int = 8, target_bandwidth: list[float] | None = None, kmeans_init: bool = False) -> argparse.Namespace:
    """GANCodecTask arguments of a tiny 16 kHz DAC. `kmeans_init: true` leaves the codebooks
    uninitialised until a training step runs (what a real config has; the trained checkpoint
    then carries `inited = 1`)."""
    from espnet2.tasks.gan_codec import GANCodecTask

    generator = {
        "hidden_dim": 16, "codebook_dim": 8, "encdec_n_filters": 4, "encdec_n_residual_layers": 1,
        "encdec_ratios": [8, 5, 4, 2], "encdec_lstm": 1, "quantizer_n_q": n_q, "quantizer_bins": 1024,
        "quantizer_kmeans_init": kmeans_init, "quantizer_dropout": True,
        # ESPnet-Codec's own configs list several; encode() without a bandwidth takes the last.
        "quantizer_target_bandwidth": target_bandwidth or [2.0, 4.0],
    }
    discriminator = {
        "msmpmb_discriminator_params": {
            "rates": [], "fft_sizes": [512], "sample_rate": SAMPLE_RATE, "periods": [2, 3],
            "period_discriminator_params": {"channels": 4, "max_downsample_channels": 16},
            "band_discriminator_params": {"sample_rate": SAMPLE_RATE, "bands": [[0.0, 0.5], [0.5, 1.0]]},
        },
    }
    conf = {"sampling_rate": SAMPLE_RATE, "generator_params": generator, "discriminator_params": discriminator,
            "mel_loss_params": {"fs": SAMPLE_RATE, "range_start": 6, "range_end": 9, "n_mels": 40}}
    args = GANCodecTask.get_parser().parse_args(["--codec", "dac"])
    args.codec_conf = conf
    return args


def build_codec(directory: Path, seed: int, **kwargs) -> Path:
    from espnet2.tasks.gan_codec import GANCodecTask

    torch.manual_seed(seed)
    args = dac_args(**kwargs)
    model = GANCodecTask.build_model(args)
    _save_espnet(directory, args, model, "1epoch.pth")
    return directory


def ssl_args() -> argparse.Namespace:
    """SSLTask arguments of a tiny XEUS-like model (XEUS: 19 E-Branchformer blocks of 1024)."""
    from espnet2.tasks.ssl import SSLTask

    args = SSLTask.get_parser().parse_args([])
    args.token_list = [str(i) for i in range(KMEANS_CLUSTERS)]
    args.frontend = "wav2vec_cnn"
    args.frontend_conf = {"norm_mode": "layer_norm", "conv_mode": "standard", "bias": False,
                          "shapes": [list(s) for s in CNN_SHAPES], "normalize_audio": False,
                          "normalize_output": True}
    args.preencoder = "linear"
    args.preencoder_conf = {"output_size": 16}
    args.encoder = "e_branchformer"
    args.encoder_conf = {"output_size": 16, "attention_heads": 2, "attention_layer_type": "rel_selfattn",
                         "pos_enc_layer_type": "rel_pos", "rel_pos_type": "latest", "cgmlp_linear_units": 32,
                         "cgmlp_conv_kernel": 7, "linear_units": 32, "num_blocks": SSL_BLOCKS,
                         "dropout_rate": 0.0, "positional_dropout_rate": 0.0, "attention_dropout_rate": 0.0,
                         "input_layer": None, "use_ffn": True, "macaron_ffn": True, "layer_drop_rate": 0.0}
    args.loss = [{"name": "hubert", "conf": {"num_classes": KMEANS_CLUSTERS, "final_dim": 8}}]
    args.util = [{"name": "mask", "conf": {"mask_prob": 0.5, "mask_length": 2}}]
    return args


def synthetic_audio(seconds: float, seed: int) -> np.ndarray:
    """Harmonic tones whose pitch changes every 0.2 s, plus noise: something for k-means to split."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.2 * SAMPLE_RATE)) / SAMPLE_RATE
    parts = [sum(0.2 * 0.6**k * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(5))
             for f0 in rng.uniform(120, 600, int(seconds / 0.2))]
    x = np.concatenate(parts) + 0.01 * rng.standard_normal(len(parts) * len(t))
    return x.astype(np.float32)


def build_ssl(directory: Path, seed: int) -> Path:
    import joblib
    from espnet2.tasks.ssl import SSLTask
    from sklearn.cluster import MiniBatchKMeans

    torch.manual_seed(seed)
    args = ssl_args()
    model = SSLTask.build_model(args)
    _save_espnet(directory, args, model, "1epoch.pth")
    # k-means on the features svslm will cluster, as ESPnet's learn_kmeans fits its km_<K>.mdl
    from svslm.tokenize.config import SSLConfig
    from svslm.tokenize.ssl import XeusFeatures

    features = XeusFeatures(SSLConfig(backend="xeus", layer=SSL_LAYER, model_path=str(directory / "1epoch.pth"),
                                      config_path=str(directory / "config.yaml")))
    x = np.concatenate([features(synthetic_audio(4.0, seed + i)) for i in range(3)])
    km = MiniBatchKMeans(n_clusters=KMEANS_CLUSTERS, batch_size=1024, n_init=1, random_state=seed).fit(x)
    joblib.dump(km, directory / f"km_{KMEANS_CLUSTERS}.mdl")
    return directory


def owsm_args(token_list: list[str]) -> argparse.Namespace:
    """S2TTask arguments of a tiny OWSM-like model (OWSM v3.1: E-Branchformer + Transformer decoder)."""
    from espnet2.tasks.s2t import S2TTask

    args = S2TTask.get_parser().parse_args([])
    args.token_list = token_list
    args.token_type = "char"
    args.bpemodel = None
    args.input_size = None
    args.frontend = "default"
    args.frontend_conf = {"n_fft": 400, "hop_length": 160, "n_mels": 40}
    args.normalize = None
    args.specaug = None
    args.encoder = "transformer"
    args.encoder_conf = {"output_size": 16, "attention_heads": 2, "linear_units": 32, "num_blocks": 1,
                         "input_layer": "conv2d", "dropout_rate": 0.0}
    args.decoder = "transformer"
    args.decoder_conf = {"attention_heads": 2, "linear_units": 32, "num_blocks": 1, "dropout_rate": 0.0}
    args.model_conf = {"ctc_weight": 0.3, "sym_na": "<na>"}
    args.preprocessor_conf = {"fs": SAMPLE_RATE, "speech_length": OWSM_SECONDS, "speech_resolution": 0.02,
                              "notime_symbol": "<notimestamps>", "first_time_symbol": "<0.00>",
                              "last_time_symbol": f"<{OWSM_SECONDS:.2f}>"}
    return args


def owsm_token_list(text_chars: str) -> list[str]:
    """OWSM's layout: <blank> <unk> <na> <nospeech> languages tasks <notimestamps> timestamps,
    then the text units, then <sos> <eos> <sop>."""
    times = [f"<{i * 0.02:.2f}>" for i in range(OWSM_SECONDS * 50 + 1)]
    return (["<blank>", "<unk>", "<na>", "<nospeech>"] + OWSM_LANGS + OWSM_TASKS + ["<notimestamps>"] + times
            + sorted(set(text_chars)) + ["<sos>", "<eos>", "<sop>"])


def build_owsm(directory: Path, seed: int, text_chars: str = "我爱唱歌你好天") -> Path:
    from espnet2.tasks.s2t import S2TTask

    torch.manual_seed(seed)
    args = owsm_args(owsm_token_list(text_chars))
    model = S2TTask.build_model(args)
    _save_espnet(directory, args, model, "model.pth")
    return directory


def write_tokenize_config(out_dir: Path, repo: Path) -> Path:
    """conf/tokenize/tiny.yaml with the espnet codec and xeus SSL back ends on the tiny models."""
    with open(repo / "conf" / "tokenize" / "tiny.yaml", encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    cfg["codec"] = {"backend": "espnet", "codebook_size": 1024,
                    "model_file": str(out_dir / "codec" / "1epoch.pth"),
                    "config_file": str(out_dir / "codec" / "config.yaml"), "device": "cpu"}
    cfg["ssl"] = {"backend": "xeus", "layer": SSL_LAYER, "n_clusters": KMEANS_CLUSTERS,
                  "model_path": str(out_dir / "ssl" / "1epoch.pth"), "config_path": str(out_dir / "ssl" / "config.yaml"),
                  "kmeans_path": str(out_dir / "ssl" / f"km_{KMEANS_CLUSTERS}.mdl"), "device": "cpu"}
    path = out_dir / "tokenize.yaml"
    with open(path, "w", encoding="utf-8") as f:
        f.write("# Stage 2 on the tiny ESPnet models written by local/espnet_tiny_models.py\n")
        yaml.safe_dump(cfg, f, sort_keys=False, allow_unicode=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", required=True, type=Path, help="writes codec/, ssl/, [owsm/], tokenize.yaml")
    parser.add_argument("--owsm", action="store_true", help="also the OWSM-like recogniser (owsm/)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out_dir = args.out_dir.resolve()
    repo = Path(__file__).resolve().parent.parent
    build_codec(out_dir / "codec", args.seed)
    build_ssl(out_dir / "ssl", args.seed)
    if args.owsm:
        build_owsm(out_dir / "owsm", args.seed)
    print(write_tokenize_config(out_dir, repo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
