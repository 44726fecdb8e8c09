"""Per-utterance figure of the report: a mel spectrogram per system and their F0 over the score's notes."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a recipe machine
import matplotlib.pyplot as plt
import numpy as np

from svslm.utils.f0 import dio_f0
from svslm.utils.fileio import atomic_path
from svslm.utils.mel import MelConfig, mel_spectrogram

F0_FLOOR, F0_CEIL = 40.0, 800.0  # Hz: VERSA mcd_f0's search range
FRAME_PERIOD_MS = 10.0  # F0 hop of the plot; the metrics use their own


def f0_midi(wav: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 of `wav` by WORLD DIO + StoneMask (fast, and what the metrics' WORLD analysis refines),
    as (times s, MIDI pitch with NaN where unvoiced)."""
    f0, times = dio_f0(wav, sample_rate, FRAME_PERIOD_MS, F0_FLOOR, F0_CEIL)
    with np.errstate(divide="ignore"):
        midi = np.where(f0 > 0, 69.0 + 12.0 * np.log2(np.maximum(f0, 1e-6) / 440.0), np.nan)
    return times, midi


def plot_utterance(
    png: Path,
    title: str,
    systems: list[tuple[str, np.ndarray]],
    notes: list[dict],
    mel: MelConfig | None = None,
) -> None:
    """Write `png`: the `utterance_figure` of the arguments."""
    fig = utterance_figure(title, systems, notes, mel)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=72)
    plt.close(fig)


def utterance_figure(title: str, systems: list[tuple[str, np.ndarray]], notes: list[dict],
                     mel: MelConfig | None = None) -> plt.Figure:
    """One mel panel per (label, 16 kHz wav) of `systems` (the first is the reference), then one F0
    panel over the score's notes (score.json `notes`: start, end, midi; rests 0), its pitch range
    set by the notes and the reference."""
    mel = mel or MelConfig()
    n = len(systems)
    height = 1.1 * n + 2.6  # inches
    # Fixed margins in inches (labels on the left, the legend below): tight_layout measured every
    # tick label of every panel and took a quarter of the report's time.
    fig, axes = plt.subplots(n + 1, 1, figsize=(10, height), sharex=True,
                             gridspec_kw={"height_ratios": [1] * n + [2.2], "left": 0.15, "right": 0.98,
                                          "top": 1 - 0.4 / height, "bottom": 1.5 / height, "hspace": 0.25})
    duration = max(len(w) for _, w in systems) / mel.sample_rate
    specs = [mel_spectrogram(np.asarray(wav, dtype=np.float32), mel).numpy() for _, wav in systems]  # [n_mels, T]
    top = max(float(s.max()) for s in specs)  # one colour scale for all panels, so levels compare
    for ax, (label, _), spec in zip(axes, systems, specs):
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                  extent=(0, spec.shape[1] / mel.frame_rate, 0, mel.n_mels), interpolation="nearest")
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
    f0_ax = axes[-1]
    for note in notes:
        if note.get("midi", 0) > 0:
            f0_ax.hlines(note["midi"], note["start"], note["end"], colors="0.75", linewidth=6, zorder=1)
    colors = plt.get_cmap("tab10")
    pitches = [float(note["midi"]) for note in notes if note.get("midi", 0) > 0]
    for i, (label, wav) in enumerate(systems):
        times, midi = f0_midi(wav, mel.sample_rate)
        if i == 0 and np.isfinite(midi).any():  # the range shown: the notes and the reference's F0, so
            pitches += list(np.nanpercentile(midi, [2, 98]))  # one system's octave jumps cannot flatten the notes
        f0_ax.plot(times, midi, color="black" if i == 0 else colors(i - 1), linewidth=1.6 if i == 0 else 0.9,
                   label=label, zorder=3 if i == 0 else 2)
    if pitches:
        f0_ax.set_ylim(min(pitches) - 3, max(pitches) + 3)
    f0_ax.set_ylabel("F0 (MIDI)", fontsize=8)
    f0_ax.set_xlabel("time (s)")
    f0_ax.set_xlim(0, duration)
    f0_ax.grid(alpha=0.3)
    f0_ax.legend(fontsize=7, ncol=min(4, n), loc="upper center", bbox_to_anchor=(0.5, -0.3),  # below: never over the data
                 title="grey bars: score notes", title_fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig
