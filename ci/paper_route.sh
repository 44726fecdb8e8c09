#!/usr/bin/env bash
# CI: the paper's route through run.sh, all six stages, on CPU, the way a cluster user runs it:
# `--corpus ace_opencpop` on a small corpus in the published ACE-Opencpop layout (parquet shards,
# written by the mini generator), `--pretrained_lm` an ESPnet-SpeechLM-format checkpoint, and the
# paper's configs themselves (conf/*/paper*.yaml, selected by the corpus), with only their sizes
# shrunk through run.sh's own `*_args "--override ..."` pass-through. So every paper config is
# loaded and its paper-only branches run: the ZeRO-2 DeepSpeed JSON, activation checkpointing, the
# U-Net flow estimator with a speaker prompt, HiFi-GAN V1 with its multi-scale discriminators, and
# every condition of the paper's Table 1/2.
#
#   ci/paper_route.sh [WORK_DIR]        # default: a new temporary directory
#
# What cannot run on a CPU is replaced by the nearest setting that can, and said so below:
# - DeepSpeed FP16 (conf/deepspeed/paper_zero2_fp16.json) needs CUDA: the same JSON with bf16
#   instead of fp16 (ZeRO-2 and everything else unchanged), and torch's Adam instead of DeepSpeed's
#   FusedAdam, which would be compiled on first use.
# - The ESPnet-Codec DAC and XEUS checkpoints cannot be downloaded: with ESPnet installed
#   (./install.sh --espnet), tiny random models of the same classes and on-disk format built by
#   ESPnet's own task classes (local/espnet_tiny_models.py: DAC 8 x 1024, an XEUS-like SSLTask model
#   and its k-means) run through the espnet/xeus back ends; without ESPnet, the mini codec and SSL
#   back ends at small codebook sizes.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (paper_route.sh:${BASH_LINENO[0]}) $*" >&2; }

root="$(cd "$(dirname "$0")/.." && pwd)"
work=${1:-$(mktemp -d -t svslm_paper_route.XXXXXX)}
mkdir -p "${work}"
work="$(cd "${work}" && pwd)"
. "${root}/path.sh"
start=$(date +%s)
log "paper route in ${work} (load average: $(cut -d' ' -f1-3 /proc/loadavg), $(getconf _NPROCESSORS_ONLN) cores)"

# ---- the corpus: ACE-Opencpop's published layout, 2 singers x 4 songs (4 train, 2 dev, 2 test) ----
python "${root}/local/mini/make_corpus.py" --config "${root}/conf/data/mini_corpus.yaml" --out_dir "${work}/db" \
    --override seed=7 train_songs=3 test_songs=1 phrases_per_train_song=1 phrases_per_test_song=1 dev_utts=2 \
    max_phrase_seconds=4.0 full_coverage=false \
    "singers=[{singer: 1, low_midi: 60, high_midi: 79}, {singer: 3, low_midi: 48, high_midi: 67, tract_scale: 0.86}]"

# ---- codec and SSL tokenizers ----
if python -c "import espnet2" 2>/dev/null; then
    python "${root}/local/espnet_tiny_models.py" --out_dir "${work}/espnet_tiny" >/dev/null
    # The builder's tokenize YAML names its files and sizes; stage 2 takes them as overrides of
    # conf/tokenize/paper.yaml, the config a cluster user runs.
    read -r codebook ssl_clusters codec_ssl_overrides < <(python - "${work}/espnet_tiny/tokenize.yaml" <<'EOF'
import sys, yaml
t = yaml.safe_load(open(sys.argv[1]))
c, s = t["codec"], t["ssl"]
keys = [f"codec.{k}={c[k]}" for k in ("backend", "codebook_size", "model_file", "config_file")]
keys += [f"ssl.{k}={s[k]}" for k in ("backend", "layer", "n_clusters", "model_path", "config_path", "kmeans_path")]
print(c["codebook_size"], s["n_clusters"], " ".join(keys + ["codec.device=auto", "ssl.device=auto"]))
EOF
)
    log "CPU substitute: tiny ESPnet-built DAC (${codebook} x 8) and XEUS-like model (${ssl_clusters} clusters) through the espnet/xeus back ends for ESPnet-Codec DAC + XEUS"
else
    codebook=32; ssl_clusters=32
    codec_ssl_overrides="codec.backend=mini codec.codebook_size=${codebook} codec.device=auto ssl.backend=mini \
ssl.n_clusters=${ssl_clusters} ssl.kmeans_path='' ssl.device=auto codec.kmeans_n_init=1 ssl.kmeans_n_init=1 codec.griffin_lim_iters=4"
    log "CPU substitute (no ESPnet installed): codec/SSL backends mini (${codebook} x 8 codec, ${ssl_clusters} SSL clusters) for ESPnet-Codec DAC + XEUS"
fi

# ---- the "pretrained" LM: conf/lm/paper.yaml's format and vocabulary layout at a tiny geometry ----
# Its codec_ssl tokens are the ones stage 2 writes for these tokenizer sizes (checked after stage 2).
mkdir -p "${work}/pretrained_tokens"
python - "${work}/pretrained_tokens/codec_ssl.txt" ${ssl_clusters} ${codebook} <<'EOF'
import sys
from svslm.lm.vocab import codec_ssl_tokens
path, n_ssl, n_codec = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tokens = codec_ssl_tokens(n_ssl, 8, n_codec)  # ESPnet's names: <ssl_code1>.. (1-based)
open(path, "w", encoding="utf-8").write("".join(t + "\n" for t in tokens))
EOF
lm_geometry="model.hidden_size=64 model.num_hidden_layers=2 model.num_attention_heads=4 model.num_key_value_heads=4 \
model.intermediate_size=128 model.max_position_embeddings=4096"
python -m svslm.bin.lm_make_pretrained --config "${root}/conf/lm/paper.yaml" \
    --token_list "${work}/pretrained_tokens/codec_ssl.txt" --out_dir "${work}/pretrained_lm" --override ${lm_geometry}

# ---- DeepSpeed: the paper's ZeRO-2 JSON with bf16 for fp16 (CPU) ----
python - "${root}/conf/deepspeed/paper_zero2_fp16.json" "${work}/paper_zero2_bf16_cpu.json" <<'EOF'
import json, sys
ds = json.load(open(sys.argv[1]))
ds.pop("fp16")
ds["bf16"] = {"enabled": True}
ds["optimizer"]["params"]["torch_adam"] = True
json.dump(ds, open(sys.argv[2], "w"), indent=1)
EOF
log "CPU substitute: DeepSpeed bf16 for fp16 (ZeRO stage 2 kept), torch Adam for FusedAdam: ${work}/paper_zero2_bf16_cpu.json"

# ---- all six stages through run.sh with the paper configs, sizes shrunk ----
cd "${work}"
"${root}/run.sh" --corpus ace_opencpop --db_root "${work}/db" --pretrained_lm "${work}/pretrained_lm" --nj 1 \
    --tokenize_args "--override ${codec_ssl_overrides} prompt_frames=100 shard_size=4" \
    --lm_args "--override train.max_epochs=1 train.grad_accum=1 train.log_interval=1 \
train.deepspeed_config=${work}/paper_zero2_bf16_cpu.json" \
    --decode_args "--override batch_size=4" \
    --flow_args "--override model.prompt_frames=100 model.encoder.d_model=32 model.encoder.n_blocks=1 \
model.encoder.n_heads=2 model.encoder.ffn_dim=64 model.encoder.spk_dim=16 model.estimator.channels=[32,32] \
model.estimator.n_blocks=1 model.estimator.n_mid_blocks=1 model.estimator.n_heads=2 model.estimator.head_dim=16 \
model.sampling.n_steps=2 data.batch_size=4 data.num_workers=0 train.epochs=1" \
    --vocoder_args "--override generator.upsample_initial_channel=16 discriminator.period_channels=[4,8,16,16,16] \
discriminator.scale_channels=[16,16,32,32,32,32,32] train.batch_size=2 train.max_steps=4 train.num_workers=0 \
train.valid_interval=4 train.checkpoint_interval=4 train.log_interval=1 train.max_valid_utts=2 train.n_audio_samples=1" \
    --asr_args "--override model.conv_channels=16 model.rnn_hidden=16 model.rnn_layers=1 train.epochs=1 \
train.batch_size=4 train.num_workers=0 train.num_threads=1" \
    --infer_args "--override batch_size=4"

# ---- what must hold ----
if ! diff -q "${work}/pretrained_tokens/codec_ssl.txt" dump/token_list/codec_ssl.txt >/dev/null; then
    log "the pretrained LM's codec_ssl tokens differ from stage 2's dump/token_list/codec_ssl.txt"; exit 1
fi
python - exp/eval/ace_opencpop <<'EOF'
import json, sys
from pathlib import Path

import yaml

# The paper-only branches ran: ZeRO-2 (bf16 on CPU), activation checkpointing, the U-Net estimator
# with a speaker prompt, HiFi-GAN V1 (transposed upsampling, multi-scale discriminators).
ds = json.loads(Path("exp/lm/ace_opencpop/deepspeed_config.json").read_text())
assert ds["zero_optimization"]["stage"] == 2 and ds["bf16"]["enabled"], ds
assert yaml.safe_load(Path("exp/lm/ace_opencpop/config.yaml").read_text())["train"]["activation_checkpointing"]
for flow in sorted(Path("exp/flow/ace_opencpop").iterdir()):
    model = yaml.safe_load((flow / "config.yaml").read_text())["model"]
    assert model["estimator"]["kind"] == "unet" and model["use_prompt"], flow
voc = yaml.safe_load(Path("exp/vocoder/ace_opencpop/config.yaml").read_text())
assert voc["discriminator"]["n_scales"] == 3 and voc["generator"]["upsample_mode"] == "transposed", voc
eval_dir = Path(sys.argv[1])
manifest = json.loads((eval_dir / "manifest.json").read_text())
names = [c["name"] for c in manifest["conditions"]]
expected = ["CD Resynthesis", "LM + CD", "LM + Flow1 + CD", "LM + Flow1 + Voc", "LM + Flow2 + Voc", "GT mel + Voc"]
assert names == expected, names
bad = [(c["name"], c["status"]) for c in manifest["conditions"] if c["status"] != "done"]
assert not bad, bad
for c in manifest["conditions"]:
    assert len(list((eval_dir / c["wav_dir"]).glob("*.wav"))) == len(manifest["utterances"]), c["name"]
results = (eval_dir / "RESULTS.md").read_text()
assert "published" in results and "arXiv 2512.14657" in results, "RESULTS.md lacks the paper's rows"
print(f"paper route: {len(names)} conditions x {len(manifest['utterances'])} test utterances rendered and scored")
EOF
log "paper route done in $(( $(date +%s) - start )) s (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
