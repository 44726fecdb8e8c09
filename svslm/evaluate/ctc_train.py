"""Training of the phoneme CTC recogniser (svslm.evaluate.ctc_asr) on a Kaldi-style data dir.

Reads `wav.scp` + `text` of the train split (and dev for model selection), trains with CTC,
keeps the state with the best dev PER, and measures the ceiling: PER on the ground-truth test
audio. A re-run resumes from the newest checkpoint (`checkpoints/step<epoch>/`,
svslm.utils.checkpoint), exactly as if it had not stopped; a finished directory (`results.json`)
is left alone.
"""
from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from svslm.evaluate.ctc_asr import (
    TOKENS,
    AsrConfig,
    CtcPhoneModel,
    CtcRecognizer,
    asr_features,
    normalised_features,
)
from svslm.evaluate.ctc_splice import NoteSplicer
from svslm.evaluate.per import phone_errors, sung_phones
from svslm.utils.audio import load_wav
from svslm.utils.checkpoint import CheckpointDir, rng_state, set_rng_state
from svslm.utils.config import save_config, to_dict
from svslm.utils.fileio import (
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    read_kaldi_map,
)

logger = logging.getLogger(__name__)
_TOKEN_ID = {t: i for i, t in enumerate(TOKENS)}


@dataclass
class AsrUtterance:
    utt: str
    wav_path: str
    phones: list[str]  # sung phones, rests removed


def read_split(split_dir: Path) -> list[AsrUtterance]:
    """Utterances of `wav.scp` + `text`; every problem in the split is reported at once."""
    wavs = read_kaldi_map(split_dir / "wav.scp")
    texts = read_kaldi_map(split_dir / "text")
    problems, utts = [], []
    for utt in sorted(wavs):
        if utt not in texts:
            problems.append(f"{utt}: in wav.scp but not in text")
            continue
        phones = sung_phones(texts[utt].split())
        unknown = sorted({p for p in phones if p not in _TOKEN_ID})
        if unknown:
            problems.append(f"{utt}: phones outside the inventory {unknown}")
        elif not phones:
            problems.append(f"{utt}: no sung phone in text")
        else:
            utts.append(AsrUtterance(utt, wavs[utt], phones))
    problems += [f"{utt}: in text but not in wav.scp" for utt in sorted(set(texts) - set(wavs))]
    if problems:
        raise ValueError(f"{split_dir}: {len(problems)} bad utterance(s):\n  " + "\n  ".join(problems))
    return utts


class CtcDataset(torch.utils.data.Dataset):
    def __init__(self, utts: list[AsrUtterance], cfg: AsrConfig, splicer: NoteSplicer | None = None):
        self.utts, self.cfg, self.splicer = utts, cfg, splicer

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.utts[i]
        if self.splicer is not None and random.random() < self.cfg.train.splice_probability:
            log_mel, phones = self.splicer.splice(u.utt, random)
            feats = normalised_features(log_mel, self.cfg.model.n_cepstra)
        else:
            feats, phones = asr_features(load_wav(u.wav_path, self.cfg.mel.sample_rate), self.cfg.mel,
                                         self.cfg.model.n_cepstra), u.phones
        return feats, torch.tensor([_TOKEN_ID[p] for p in phones])


def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
    feats, targets = zip(*batch)
    feat_lens = torch.tensor([f.shape[0] for f in feats])
    target_lens = torch.tensor([t.numel() for t in targets])
    padded = nn.utils.rnn.pad_sequence(list(feats), batch_first=True)  # [B, T, n_mels]
    return padded, feat_lens, torch.cat(targets), target_lens


def _time_mask(feats: torch.Tensor, lengths: torch.Tensor, width: int, gen: torch.Generator) -> torch.Tensor:
    """Zero one random span of up to `width` frames per utterance (SpecAugment time masking)."""
    feats = feats.clone()
    for b, n in enumerate(lengths.tolist()):
        w = int(torch.randint(0, width + 1, (1,), generator=gen))
        if 0 < w < n:
            start = int(torch.randint(0, n - w, (1,), generator=gen))
            feats[b, start:start + w] = 0.0
    return feats


def evaluate_per(recognizer: CtcRecognizer, utts: list[AsrUtterance], desc: str) -> float:
    """Corpus PER (%) = all edits / all reference phones."""
    edits = ref_len = 0
    for u in tqdm(utts, desc=desc, leave=False):
        err = phone_errors(recognizer.recognize(load_wav(u.wav_path, recognizer.cfg.mel.sample_rate)), u.phones)
        edits, ref_len = edits + err.edits, ref_len + err.ref_len
    return 100.0 * edits / ref_len


def _resumable_config(cfg: dict) -> dict:
    """The config without `train.epochs`: raising the epoch count continues a finished run."""
    return {**cfg, "train": {k: v for k, v in cfg["train"].items() if k != "epochs"}}


def train_ctc(cfg: AsrConfig, data_dir: Path, exp_dir: Path) -> dict:
    """Train on `data_dir/train`, select on `dev` (train when there is no dev), test on `test`."""
    if (exp_dir / "results.json").is_file():
        logger.info("%s/results.json exists: the recogniser is trained; delete it to retrain", exp_dir)
        return json.loads((exp_dir / "results.json").read_text(encoding="utf-8"))
    torch.set_num_threads(cfg.train.num_threads)
    torch.manual_seed(cfg.train.seed)
    random.seed(cfg.train.seed)
    train = read_split(data_dir / "train")
    dev = read_split(data_dir / "dev") if (data_dir / "dev" / "wav.scp").is_file() else train
    exp_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, exp_dir / "config.yaml")
    atomic_write_text(exp_dir / "tokens.txt", "\n".join(TOKENS) + "\n")

    model = CtcPhoneModel(cfg.mel.n_mels, len(TOKENS), cfg.model)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    state = {"epoch": 0, "best_per": float("inf"), "best_epoch": 0, "history": []}
    order_gen = torch.Generator().manual_seed(cfg.train.seed)  # the loader's shuffling
    mask_gen = torch.Generator().manual_seed(cfg.train.seed + 1)
    checkpoints = CheckpointDir(exp_dir / "checkpoints", keep=1)
    ckpt = checkpoints.load_latest_state()
    if ckpt is not None:
        if _resumable_config(ckpt["config"]) == _resumable_config(to_dict(cfg)):
            model.load_state_dict(ckpt["model"])
            optim.load_state_dict(ckpt["optim"])
            state = ckpt["state"]
            order_gen.set_state(ckpt["order_rng"])
            mask_gen.set_state(ckpt["mask_rng"])
            set_rng_state(ckpt["rng"])
            logger.info("resuming after epoch %d", state["epoch"])
        else:
            logger.warning("%s was written with another config; training from scratch", checkpoints.root)
    splicer = (NoteSplicer(data_dir / "train", {u.utt: u.wav_path for u in train}, cfg.mel)
               if cfg.train.splice_probability > 0 else None)
    loader = torch.utils.data.DataLoader(
        CtcDataset(train, cfg, splicer), batch_size=cfg.train.batch_size, shuffle=True, collate_fn=collate,
        num_workers=cfg.train.num_workers, generator=order_gen,
    )
    recognizer = CtcRecognizer(model, cfg, exp_dir)
    start = time.time()
    for epoch in range(state["epoch"] + 1, cfg.train.epochs + 1):
        model.train()
        total, steps = 0.0, 0
        for feats, feat_lens, targets, target_lens in loader:
            if cfg.train.time_mask_frames > 0:
                feats = _time_mask(feats, feat_lens, cfg.train.time_mask_frames, mask_gen)
            log_probs, out_lens = model(feats, feat_lens)  # [B, T', V]
            loss = ctc(log_probs.transpose(0, 1), targets, out_lens, target_lens)
            optim.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            optim.step()
            total, steps = total + loss.item(), steps + 1
        record = {"epoch": epoch, "train_ctc_loss": total / max(steps, 1)}
        if epoch % cfg.train.valid_every == 0 or epoch == cfg.train.epochs:
            model.eval()
            record["dev_per"] = evaluate_per(recognizer, dev, f"dev PER epoch {epoch}")
            if record["dev_per"] < state["best_per"]:
                state["best_per"], state["best_epoch"] = record["dev_per"], epoch
                with atomic_path(exp_dir / "model.pth") as tmp:
                    torch.save(model.state_dict(), tmp)
        state["epoch"] = epoch
        state["history"].append(record)
        logger.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.3f}" for k, v in record.items() if k != "epoch"))
        checkpoints.save_state(epoch, {
            "model": model.state_dict(), "optim": optim.state_dict(), "state": state, "config": to_dict(cfg),
            "order_rng": order_gen.get_state(), "mask_rng": mask_gen.get_state(), "rng": rng_state()})

    model.load_state_dict(torch.load(exp_dir / "model.pth", map_location="cpu", weights_only=True))
    model.eval()
    results = {
        "dev_per": state["best_per"],
        "best_epoch": state["best_epoch"],
        "dev_is_train": dev is train,
        "train_utterances": len(train),
        "train_seconds_this_run": round(time.time() - start, 1),
        "history": state["history"],
    }
    test_dir = data_dir / "test"
    if (test_dir / "wav.scp").is_file():
        # The ceiling: how well this recogniser reads real (ground-truth) test singing.
        results["test_per"] = evaluate_per(recognizer, read_split(test_dir), "test PER")
    atomic_write_json(exp_dir / "results.json", results)
    return results
