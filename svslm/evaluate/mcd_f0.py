"""MCD, F0_RMSE and F0_CORR as VERSA's `mcd_f0` metric computes them (the paper scored with VERSA).

Analysis (VERSA `world_extract`): the waveform in [-1, 1] is scaled to the int16 range, a 255-tap
FIR high-pass at 70 Hz removes rumble, WORLD Harvest finds F0 (40-800 Hz, 5 ms frames),
CheapTrick the spectral envelope (FFT 1024), and pysptk `sp2mc` turns it into 40 mel-cepstral
coefficients (order 39, all-pass constant alpha 0.466, c0 included).

Two ways to pair the frames of the synthesis with those of the reference:
- `dtw: false` (the paper's VERSA config, our default): both feature sequences are cut to the
  shorter one; more than 10% length mismatch is refused. MCD over all frames; F0_RMSE (Hz) and
  Pearson F0_CORR over all frames, unvoiced frames counting as 0 Hz.
- `dtw: true` (ESPnet's other SVS configs): MCD over the frames whose normalised power is above
  -20 dB, aligned by FastDTW on their mel-cepstra; F0 over each signal's voiced frames, aligned
  by FastDTW on the mel-cepstra of those voiced frames, so every compared pair is voiced in both.

MCD (dB) = mean over frames of 10 / ln 10 * sqrt(2 * sum_d (mc_hyp[d] - mc_ref[d])^2).

Optional: F0 from torchcrepe instead of Harvest (the envelope still comes from WORLD).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pysptk
import pyworld
import scipy.signal
import scipy.stats
from fastdtw import fastdtw

from svslm.evaluate.na import MetricUnavailable
from svslm.utils.audio import SAMPLE_RATE

# SAMPLE_RATE is also VERSA's mcd_f0 rate in the paper's config; the scorer passes its MetricsConfig.sample_rate.


@dataclass
class McdF0Config:
    dtw: bool = False  # false = truncate to the shorter signal (the paper's VERSA config); true = DTW
    f0_min: float = 40.0  # Hz, Harvest's F0 floor
    f0_max: float = 800.0  # Hz, Harvest's F0 ceiling
    frame_shift_ms: float = 5.0  # WORLD frame period
    fft_size: int = 1024  # CheapTrick FFT size
    mcep_order: int = 39  # sp2mc order: order + 1 coefficients, c0 included
    mcep_alpha: float = 0.466  # all-pass constant of the mel-cepstrum
    low_cut_hz: float = 70.0  # FIR high-pass applied before analysis
    max_length_mismatch: float = 0.1  # dtw=false: refuse pairs whose frame counts differ more
    power_threshold_db: float = -20.0  # dtw=true: frames at or below this normalised power are silence
    # "world" = Harvest (VERSA); "crepe" = torchcrepe (optional, needs the torchcrepe package)
    f0_extractor: Literal["world", "crepe"] = "world"
    crepe_model: Literal["tiny", "full"] = "full"  # torchcrepe network size
    crepe_voicing_threshold: float = 0.5  # torchcrepe periodicity below this = unvoiced (0 Hz)


def mode_name(cfg: McdF0Config) -> str:
    """The alignment mode as it must appear beside every number."""
    return "dtw: true" if cfg.dtw else "dtw: false"


@dataclass
class WorldFeatures:
    f0: np.ndarray  # [T] Hz, 0 where unvoiced
    mcep: np.ndarray  # [T, order + 1]
    npow: np.ndarray  # [T] frame power in dB relative to the utterance mean


def _low_cut(x: np.ndarray, cfg: McdF0Config, sample_rate: int) -> np.ndarray:
    taps = scipy.signal.firwin(255, cfg.low_cut_hz / (sample_rate // 2), pass_zero=False)
    return scipy.signal.lfilter(taps, 1, x)


def _normalised_power(sp: np.ndarray) -> np.ndarray:
    """Frame power of a power-spectrum envelope [T, fft/2 + 1] in dB relative to its mean.

    The power sums both halves of the symmetric spectrum (DC and Nyquist once, the rest twice)
    over the FFT length, as VERSA's `spc2npow`.
    """
    fft_size = (sp.shape[1] - 1) * 2
    power = (sp[:, 0] + sp[:, -1] + 2.0 * sp[:, 1:-1].sum(axis=1)) / fft_size
    return 10.0 * np.log10(power / power.mean())


def _crepe_f0(x: np.ndarray, n_frames: int, cfg: McdF0Config, sample_rate: int) -> np.ndarray:
    try:
        import torch
        import torchcrepe
    except Exception as err:  # noqa: BLE001 - torchcrepe imports torchaudio, which fails beside CPU torch
        raise MetricUnavailable(f"torchcrepe F0 extractor unavailable ({type(err).__name__}: {err})")
    hop = round(sample_rate * cfg.frame_shift_ms / 1000)
    audio = torch.from_numpy((x / np.iinfo(np.int16).max).astype(np.float32))[None]
    f0, periodicity = torchcrepe.predict(
        audio, sample_rate, hop, cfg.f0_min, cfg.f0_max, cfg.crepe_model,
        return_periodicity=True, batch_size=512, device="cpu",
    )
    f0 = f0[0].numpy().astype(np.float64)
    f0[periodicity[0].numpy() < cfg.crepe_voicing_threshold] = 0.0
    # torchcrepe centres its frames like WORLD; pad or cut to Harvest's frame count.
    return np.pad(f0, (0, max(0, n_frames - f0.size)))[:n_frames]


def world_features(wav: np.ndarray, cfg: McdF0Config, sample_rate: int = SAMPLE_RATE) -> WorldFeatures:
    """WORLD analysis of a float waveform in [-1, 1] at `sample_rate` Hz."""
    x = np.asarray(wav, dtype=np.float64) * np.iinfo(np.int16).max
    x = _low_cut(x, cfg, sample_rate)
    f0, time_axis = pyworld.harvest(
        x, sample_rate, f0_floor=cfg.f0_min, f0_ceil=cfg.f0_max, frame_period=cfg.frame_shift_ms
    )
    sp = pyworld.cheaptrick(x, f0, time_axis, sample_rate, fft_size=cfg.fft_size)
    mcep = pysptk.sp2mc(sp, cfg.mcep_order, cfg.mcep_alpha)
    if cfg.f0_extractor == "crepe":
        f0 = _crepe_f0(x, len(f0), cfg, sample_rate)
    return WorldFeatures(f0=f0, mcep=mcep, npow=_normalised_power(sp))


def _mcd(mc_hyp: np.ndarray, mc_ref: np.ndarray) -> float:
    """Mean mel-cepstral distortion in dB of paired frames [T, D]."""
    diff2sum = np.sum((mc_hyp - mc_ref) ** 2, axis=1)
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * diff2sum)))


def _dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # dist=2 is the Euclidean (L2) frame distance VERSA passes as scipy's `euclidean`; as an
    # integer it runs in fastdtw's compiled code instead of a Python callback per cell.
    _, path = fastdtw(a, b, dist=2)
    ia, ib = np.asarray(path).T
    return ia, ib


def _f0_stats(f0_hyp: np.ndarray, f0_ref: np.ndarray) -> dict[str, float | MetricUnavailable]:
    out: dict[str, float | MetricUnavailable] = {
        "F0_RMSE": float(np.sqrt(np.mean((f0_hyp - f0_ref) ** 2)))
    }
    if np.ptp(f0_hyp) == 0 or np.ptp(f0_ref) == 0:
        out["F0_CORR"] = MetricUnavailable("F0 contour is constant, so Pearson correlation is undefined")
    else:
        out["F0_CORR"] = float(scipy.stats.pearsonr(f0_hyp, f0_ref)[0])
    return out


def length_mismatch_reason(n_hyp: int, n_ref: int, cfg: McdF0Config) -> str | None:
    """Why `dtw: false` refuses a pair of `n_hyp` and `n_ref` frames, or None when it accepts it.

    The rule: |n_hyp - n_ref| / (n_hyp + n_ref) must stay under `max_length_mismatch`; the reason
    quotes the lengths' own ratio, so a reader sees how far apart they are."""
    mismatch = abs(n_hyp - n_ref) / (n_hyp + n_ref)
    if mismatch < cfg.max_length_mismatch:
        return None
    return (f"the synthesis has {n_hyp} frames and the reference {n_ref}: {n_hyp / n_ref:.1%} of the "
            f"reference's length; dtw: false accepts |hyp - ref| / (hyp + ref) under "
            f"{cfg.max_length_mismatch:.0%}, this pair has {mismatch:.1%}")


def mcd_f0(hyp: np.ndarray, ref: np.ndarray, cfg: McdF0Config, sample_rate: int = SAMPLE_RATE,
           ref_features: WorldFeatures | None = None,
           hyp_features: WorldFeatures | None = None) -> dict[str, float | MetricUnavailable]:
    """{"MCD": dB, "F0_RMSE": Hz, "F0_CORR": Pearson r} of synthesis `hyp` against reference `ref`.

    Both are float waveforms at `sample_rate` Hz (the scorer's MetricsConfig.sample_rate, the one
    home of the rate). A metric that cannot be computed for this pair is a `MetricUnavailable`
    carrying the reason. `ref_features`, `hyp_features`: `world_features` of `ref` or `hyp` made earlier.
    """
    h = hyp_features if hyp_features is not None else world_features(hyp, cfg, sample_rate)
    r = ref_features if ref_features is not None else world_features(ref, cfg, sample_rate)
    if not cfg.dtw:
        n_h, n_r = len(h.f0), len(r.f0)
        n = min(n_h, n_r)
        reason = length_mismatch_reason(n_h, n_r, cfg)
        if reason:
            return {k: MetricUnavailable(reason) for k in ("MCD", "F0_RMSE", "F0_CORR")}
        return {"MCD": _mcd(h.mcep[:n], r.mcep[:n]), **_f0_stats(h.f0[:n], r.f0[:n])}

    out: dict[str, float | MetricUnavailable] = {}
    h_loud = h.mcep[h.npow > cfg.power_threshold_db]
    r_loud = r.mcep[r.npow > cfg.power_threshold_db]
    if len(h_loud) == 0 or len(r_loud) == 0:
        out["MCD"] = MetricUnavailable(
            f"no frame above {cfg.power_threshold_db:g} dB normalised power in "
            f"{'the synthesis' if len(h_loud) == 0 else 'the reference'}"
        )
    else:
        ih, ir = _dtw_path(h_loud, r_loud)
        out["MCD"] = _mcd(h_loud[ih], r_loud[ir])
    h_voiced, r_voiced = np.flatnonzero(h.f0 > 0), np.flatnonzero(r.f0 > 0)
    if len(h_voiced) == 0 or len(r_voiced) == 0:
        reason = f"no voiced frame in {'the synthesis' if len(h_voiced) == 0 else 'the reference'}"
        out["F0_RMSE"] = out["F0_CORR"] = MetricUnavailable(reason)
    else:
        ih, ir = _dtw_path(h.mcep[h_voiced], r.mcep[r_voiced])
        out.update(_f0_stats(h.f0[h_voiced][ih], r.f0[r_voiced][ir]))
    return out
