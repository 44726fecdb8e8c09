"""Predicted MOS: DNSMOS (always), SingMOS and Sheet-SSQA (from local files when present).

- DNSMOS (speechmos; its ONNX weights ship with the pip package): a speech-quality predictor,
  used here as an offline pseudo-MOS, not a singing MOS. The `DNSMOS` column is the P.835
  overall score (OVRL, 1-5), as VERSA's `dns_overall`; SIG, BAK and P.808 are kept beside it.
  Input is peak-normalised first, as VERSA does.
- SingMOS: South-Twilight/SingMOS `singing_ssl_mos` (v0.2.0; wav2vec2-base SSL + linear head,
  16 kHz). Its torch.hub entry downloads the head with wget into ./checkpoints and the SSL model
  through s3prl; offline we build the same `MOS_Predictor` from a local clone of the repository
  and load the downloaded head weights, with s3prl's cache in `torch_hub_dir`.
- Sheet-SSQA: unilight/sheet's `default` torch.hub model (v0.1.0, SSL-MOS with MDF trained on
  seven MOS-Bench sets). Its hub entry always re-downloads the config; offline we build the same
  `SSLMOS` from a local clone, the config file and the checkpoint, wrapped by the repository's
  own `Predictor`.
Both published predictors import torchaudio and s3prl, which cannot be installed beside this
CPU torch; when anything is missing the metric is `n/a` with the reason.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from svslm.evaluate.na import MetricUnavailable


@dataclass
class SingMosConfig:
    repo_dir: str = ""  # local clone of South-Twilight/SingMOS at v0.2.0; "" = SingMOS n/a
    checkpoint: str = ""  # the head weights, ft_wav2vec2_base_960_23steps.pt of the v0.2.0 release
    ssl_model: str = "wav2vec2_base_960"  # s3prl upstream the head was trained on
    torch_hub_dir: str = ""  # torch hub dir holding s3prl's cached upstream weights; "" = torch's default


@dataclass
class SheetConfig:
    repo_dir: str = ""  # local clone of unilight/sheet at v0.1.0; "" = Sheet-SSQA n/a
    model_config: str = ""  # all7-sslmos-mdf-2337-config.yml of the v0.1.0 release
    checkpoint: str = ""  # all7-sslmos-mdf-2337-checkpoint-86000steps.pkl of the v0.1.0 release
    torch_hub_dir: str = ""  # torch hub dir holding s3prl's cached upstream weights; "" = torch's default


@dataclass
class MosConfig:
    dnsmos: bool = True  # DNSMOS from speechmos (offline)
    singmos: SingMosConfig = field(default_factory=SingMosConfig)
    sheet: SheetConfig = field(default_factory=SheetConfig)


def dnsmos(wav: np.ndarray) -> dict[str, float] | MetricUnavailable:
    """{"DNSMOS": OVRL, "DNSMOS_SIG", "DNSMOS_BAK", "DNSMOS_P808"} of a 16 kHz waveform."""
    from speechmos import dnsmos as speechmos_dnsmos

    peak = float(np.max(np.abs(wav)))
    if peak == 0.0:
        return MetricUnavailable("silent audio (all samples zero)")
    out = speechmos_dnsmos.run(np.asarray(wav, dtype=np.float32) / peak, sr=16000)
    return {"DNSMOS": float(out["ovrl_mos"]), "DNSMOS_SIG": float(out["sig_mos"]),
            "DNSMOS_BAK": float(out["bak_mos"]), "DNSMOS_P808": float(out["p808_mos"])}


def _check_files(section: str, **paths: str) -> None:
    for key, value in paths.items():
        if not value:
            raise MetricUnavailable(f"no local {key} configured ({section}.{key}); its weights cannot be downloaded here")
        if not Path(value).exists():
            raise MetricUnavailable(f"{section}.{key}: {value} does not exist")


def _import_from(repo_dir: str, module: str):
    """Import `module` from a local clone of a predictor's repository."""
    if repo_dir not in sys.path:
        sys.path.insert(0, repo_dir)
    try:
        return importlib.import_module(module)
    except Exception as err:  # noqa: BLE001 - e.g. torchaudio, s3prl or fairseq absent
        raise MetricUnavailable(f"cannot import {module} from {repo_dir} ({type(err).__name__}: {err})")


def _load_hubconf(repo_dir: str):
    spec = importlib.util.spec_from_file_location(f"_hubconf_{Path(repo_dir).name}", Path(repo_dir) / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - any import-time failure means n/a
        raise MetricUnavailable(f"cannot load {repo_dir}/hubconf.py ({type(err).__name__}: {err})")
    return module


class SingMos:
    def __init__(self, cfg: SingMosConfig):
        _check_files("mos.singmos", repo_dir=cfg.repo_dir, checkpoint=cfg.checkpoint)
        if cfg.torch_hub_dir:
            torch.hub.set_dir(cfg.torch_hub_dir)
        ssl_mos = _import_from(cfg.repo_dir, "singmos.ssl_mos.ssl_mos")
        # What hubconf.singing_ssl_mos builds, without its wget of the head weights.
        self.model = ssl_mos.MOS_Predictor(ssl_model_type=cfg.ssl_model)
        self.model.load_state_dict(torch.load(cfg.checkpoint, map_location="cpu"))
        self.model.eval()

    @torch.inference_mode()
    def __call__(self, wav: np.ndarray) -> float:
        x = torch.from_numpy(np.asarray(wav, dtype=np.float32))[None]  # [1, N]
        return float(self.model(x, torch.tensor([x.shape[1]]).int())[0])


class SheetSsqa:
    def __init__(self, cfg: SheetConfig):
        import yaml

        _check_files("mos.sheet", repo_dir=cfg.repo_dir, model_config=cfg.model_config, checkpoint=cfg.checkpoint)
        if cfg.torch_hub_dir:
            torch.hub.set_dir(cfg.torch_hub_dir)
        sslmos = _import_from(cfg.repo_dir, "sheet.models.sslmos")
        hubconf = _load_hubconf(cfg.repo_dir)
        with open(cfg.model_config, encoding="utf-8") as f:
            config = yaml.load(f, Loader=yaml.Loader)  # the release's config uses Python tags
        # What hubconf.default builds, from local files instead of its URLs.
        model = sslmos.SSLMOS(config["model_input"], **config["model_params"])
        model.load_state_dict(torch.load(cfg.checkpoint, map_location="cpu"))
        model.eval()
        self.predictor = hubconf.Predictor(model, config)

    def __call__(self, wav: np.ndarray) -> float:
        return float(self.predictor.predict(wav=torch.from_numpy(np.asarray(wav, dtype=np.float32))))
