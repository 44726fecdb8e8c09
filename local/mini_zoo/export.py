"""Export the zoo's pretraining runs into the mini model zoo (local/mini_zoo/models/).

    python local/mini_zoo/export.py --tokenizer_dir exp/mini_zoo/singing/dump/tokenizers \
        --slm_dir exp/mini_zoo/slm_short/best --vocoder_dir exp/mini_zoo/vocoder --asr_dir exp/mini_zoo/asr \
        --out_dir local/mini_zoo/models

Each part is optional; what is given is written under out_dir:
- `tokenizers/{codec,ssl}/`: stage 2's fitted tokenizers as they are (run.sh --pretrained_tokenizers);
- `slm/`: the pretrained LM's ESPnet-SpeechLM checkpoint (config.yaml, hf_config/, model.pth) with
  its weights in fp16 (run.sh --pretrained_lm; loading copies them into the fp32 model);
- `vocoder/`: a vocoder exp dir that `train.init_from` (svslm/vocoder/config.py) starts from:
  `checkpoints/checkpoint_<step>.pt` with the config, the step, and the generator's and
  discriminators' weights in fp16, plus `config.yaml`;
- `asr/`: a directory that `svslm.evaluate.ctc_asr.load_ctc_recognizer` (score_eval --asr_dir,
  run.sh --pretrained_asr) loads: `asr_train`'s `config.yaml`, `tokens.txt` and `results.json`, and
  the best `model.pth` in fp16 (its PER moves by well under a point); `last.pth` (optimiser) is left out.
fp16 halves the committed size; the fine-tuning that follows absorbs the rounding.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch
import yaml

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from svslm.lm.checkpoint import HF_CONFIG_DIR, find_files
from svslm.utils.config import from_dict
from svslm.utils.fileio import atomic_dir, atomic_path
from svslm.vocoder.config import VocoderConfig
from svslm.vocoder.train import latest_checkpoint


def half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def export_tokenizers(tokenizer_dir: Path, out_dir: Path) -> Path:
    for name in ("codec", "ssl"):
        if not (tokenizer_dir / name / "config.yaml").is_file():
            raise FileNotFoundError(f"{tokenizer_dir / name}: no fitted tokenizer (config.yaml) to export")
    with atomic_dir(out_dir) as tmp:
        for name in ("codec", "ssl"):
            shutil.copytree(tokenizer_dir / name, tmp / name)
    return out_dir


def export_slm(slm_dir: Path, out_dir: Path) -> Path:
    """An ESPnet-SpeechLM checkpoint dir (lm_train's best/) -> the same with fp16 weights."""
    weights, config, _ = find_files(slm_dir)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    with atomic_dir(out_dir) as tmp:
        torch.save(half(state), tmp / "model.pth")
        shutil.copyfile(config, tmp / "config.yaml")
        shutil.copytree(slm_dir / HF_CONFIG_DIR, tmp / HF_CONFIG_DIR)
    return out_dir


def export_vocoder(vocoder_dir: Path, out_dir: Path) -> Path:
    path = latest_checkpoint(vocoder_dir / "checkpoints")
    if path is None:
        raise FileNotFoundError(f"{vocoder_dir}/checkpoints: no checkpoint_<step>.pt to export")
    state = torch.load(path, map_location="cpu", weights_only=True)
    config = current_vocoder_config(state["config"], path)
    slim = {"step": state["step"], "config": config,
            "generator": half(state["generator"]), "discriminators": half(state["discriminators"])}
    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    for old in ckpt_dir.glob("checkpoint_*.pt"):  # one version in the zoo
        old.unlink()
    target = ckpt_dir / f"checkpoint_{state['step']}.pt"
    with atomic_path(target) as tmp:
        torch.save(slim, tmp)
    with atomic_path(out_dir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target


REMOVED_VOCODER_KEYS = ("finetune_mel_scp",)  # train fields since removed; a run older than that has them (null)


def current_vocoder_config(config: dict, where: Path) -> dict:
    """The run's config without fields the vocoder no longer has, checked strictly, so that the
    zoo's config.yaml loads as a VocoderConfig."""
    config = {**config, "train": {k: v for k, v in config.get("train", {}).items() if k not in REMOVED_VOCODER_KEYS}}
    from_dict(VocoderConfig, config, str(where))
    return config


# ---- phoneme recogniser (local/mini_zoo/run.sh stage 6) ----
ASR_FILES = ("config.yaml", "tokens.txt", "results.json")


def export_asr(asr_dir: Path, out_dir: Path) -> Path:
    missing = [name for name in (*ASR_FILES, "model.pth") if not (asr_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{asr_dir}: no {', '.join(missing)}; is `svslm.bin.asr_train` finished?")
    out_dir.mkdir(parents=True, exist_ok=True)
    state = torch.load(asr_dir / "model.pth", map_location="cpu", weights_only=True)
    with atomic_path(out_dir / "model.pth") as tmp:
        torch.save(half(state), tmp)
    for name in ASR_FILES:
        shutil.copyfile(asr_dir / name, out_dir / name)
    return out_dir / "model.pth"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer_dir", type=Path, help="stage 2's dump/tokenizers (codec/, ssl/)")
    parser.add_argument("--slm_dir", type=Path, help="pretrained LM checkpoint dir (svslm.bin.lm_train's best/)")
    parser.add_argument("--vocoder_dir", type=Path, help="vocoder exp dir (svslm.bin.vocoder_train)")
    parser.add_argument("--asr_dir", type=Path, help="recogniser exp dir (svslm.bin.asr_train)")
    parser.add_argument("--out_dir", type=Path, required=True, help="zoo models directory to write into")
    args = parser.parse_args(argv)
    if not (args.tokenizer_dir or args.slm_dir or args.vocoder_dir or args.asr_dir):
        parser.error("nothing to export: give --tokenizer_dir, --slm_dir, --vocoder_dir and/or --asr_dir")
    if args.tokenizer_dir:
        print(export_tokenizers(args.tokenizer_dir, args.out_dir / "tokenizers"))
    if args.slm_dir:
        print(export_slm(args.slm_dir, args.out_dir / "slm"))
    if args.vocoder_dir:
        print(export_vocoder(args.vocoder_dir, args.out_dir / "vocoder"))
    if args.asr_dir:
        print(export_asr(args.asr_dir, args.out_dir / "asr"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
