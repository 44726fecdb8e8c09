"""Draw docs/architecture.png: the six stages, the packages that own them, the files between them."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

fig, ax = plt.subplots(figsize=(13, 6.2))
ax.set_xlim(0, 13)
ax.set_ylim(0, 6.2)
ax.axis("off")

def box(x, y, w, h, title, body, color):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, ec="#333", lw=1.2))
    ax.text(x + w / 2, y + h - 0.22, title, ha="center", va="top", fontsize=10.5, weight="bold")
    ax.text(x + w / 2, y + h - 0.55, body, ha="center", multialignment="left" if w > 5 else "center", va="top", fontsize=8.2, family="monospace")

def files(x, y, text):
    ax.text(x, y, text, ha="center", va="center", fontsize=7.8, family="monospace",
            bbox={"boxstyle": "square,pad=0.25", "fc": "#fffbe6", "ec": "#b59b00", "lw": 0.8})

def arrow(x0, y0, x1, y1):
    ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "-|>", "lw": 1.3, "color": "#333"})

C = "#dde8f7"
box(0.2, 3.6, 2.2, 2.2, "1 data", "svslm/data\nlocal/<corpus>\n\ncorpus ->\nKaldi dirs\n+ score.json", C)
box(3.0, 3.6, 2.4, 2.2, "2 tokens", "svslm/tokenize\n(svslm/lm/extend)\n\nscore -> svs_lb\nwav -> codec+SSL\nprompts, vocab", C)
box(6.0, 3.6, 2.2, 2.2, "3 lm", "svslm/lm\n\nDeepSpeed\nfine-tuning;\ndecode", C)
box(8.8, 3.6, 2.0, 2.2, "4 flow", "svslm/flow\n\nCFM: Flow1/2\nU-Net or DiT\nestimator", C)
box(8.8, 0.3, 2.0, 2.2, "5 vocoder", "svslm/vocoder\n\nHiFi-GAN on\nthe shared mel", C)
box(11.2, 1.9, 1.65, 2.6, "6 eval", "svslm/infer\nsvslm/evaluate\nsvslm/report\n\nconditions ->\nwavs ->\nscores ->\nRESULTS.md", "#e3f3e0")

files(2.7, 3.2, "data/<split>/\nwav.scp text\nscore.json")
files(5.7, 3.2, "dump/<split>/\nsvs_lb codec_ssl\ndata.json\ntokenizers/")
files(8.5, 3.2, "exp/lm/<tag>/\ncheckpoints\ndecode/<split>")
files(11.0, 5.6, "exp/flow/<tag>/\n<conf>/best.pth")
files(11.0, 0.3, "exp/vocoder/<tag>/\ngenerator.pth")
arrow(2.4, 4.7, 3.0, 4.7)
arrow(5.4, 4.7, 6.0, 4.7)
arrow(8.2, 4.7, 8.8, 4.7)
arrow(10.8, 4.4, 11.2, 3.9)
arrow(10.8, 1.4, 11.2, 2.3)
ax.plot([1.3, 1.3, 8.2], [3.6, 2.45, 2.45], color="#333", lw=1.3)   # stage 1 audio -> vocoder
arrow(8.2, 2.45, 8.8, 1.6)
ax.text(4.6, 2.55, "stage 1's train/dev audio: the mel targets of stages 4 and 5", fontsize=7.8, color="#555")

box(0.2, 0.3, 8.2, 1.7, "shared: svslm/utils  (one definition each)",
    "audio.py   SAMPLE_RATE 16000, FRAME_RATE 50, HOP_LENGTH 320; wav I/O\n"
    "mel.py     MelConfig: the flow's target = the vocoder's input\n"
    "config.py  strict YAML -> typed dataclasses (unknown keys are errors)\n"
    "fileio.py  atomic writes, Kaldi maps     device.py  the one device rule\n"
    "svslm/bin  one thin entry point a step   svslm/testing  test doubles",
    "#f0f0f0")
ax.text(6.5, 6.05, "run.sh stage N  ->  python -m svslm.bin.<verb> --config conf/<stage>/<name>.yaml  (paths in, files out)",
        ha="center", fontsize=9.5, style="italic")
fig.savefig("docs/architecture.png", dpi=110, bbox_inches="tight")
