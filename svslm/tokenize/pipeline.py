"""Stage 2: data/<split>/ -> dump/ (svs_lb, codec_ssl, speaker prompts, token lists, data.json).

Steps, each skipped on a re-run when its output is complete and up to date:
1. Tokenizers: the codec and the SSL k-means are fitted once on the training split (or, for
   the espnet/pretrained back ends, configured) and saved under dump/tokenizers/{codec,ssl}/.
2. Token lists: dump/token_list/svs_lb.txt and codec_ssl.txt.
3. Shards (svslm.utils.shards): each split's utterances, sorted, in shards of `shard_size`; a
   worker pool (--nj, svslm.utils.workers) tokenizes shards into
   dump/<split>/data/codec_ssl.<k>.{ark,scp} plus the shard's svs_lb lines, frame counts and bad
   utterances. A shard whose files cover its utterances is finished.
4. Per split: merged codec_ssl.scp, svs_lb, utt2num_frames, speaker prompts (prompt.scp,
   utt2prompt) and data.json.
Bad utterances (unreadable audio, a score that does not fit the audio, a missing score or
singer) are collected from every split and reported together, each with its reason; the good
ones are kept. With `skip_bad` the stage finishes without them (listed in dump/<split>/bad_utts).

As a job array (cmd.sh): `part="prepare"` does steps 1-2 once; job J of N (`job`) then does
step 3 for its shards (svslm.utils.jobs); a last run without `job` finds them done and merges.
"""
from __future__ import annotations

import contextlib
import filecmp
import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import kaldiio
import numpy as np
import yaml
from tqdm import tqdm

from svslm.data.phonemes import PHONEMES
from svslm.lm.vocab import codec_ssl_tokens
from svslm.tokenize.codec import (
    CodecTokenizer,
    EspnetCodec,
    MiniCodec,
    load_codec,
    log_mel_frames,
)
from svslm.tokenize.config import SSLConfig, TokenizeConfig
from svslm.tokenize.prompts import choose_prompts, fit_length
from svslm.tokenize.ssl import FEATURES, SSLTokenizer, load_ssl_tokenizer
from svslm.tokenize.svs_lb import build_token_list, score_to_tokens
from svslm.utils.audio import SAMPLE_RATE, load_wav
from svslm.utils.config import save_config, to_dict
from svslm.utils.fileio import (
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    read_kaldi_map,
    write_kaldi_map,
)
from svslm.utils.jobs import JobSlice
from svslm.utils.mel import MelConfig
from svslm.utils.shards import Shards, write_ark_scp
from svslm.utils.workers import process_pool

log = logging.getLogger("svslm")

TASK = "svs"


class BadUtterancesError(RuntimeError):
    """Some utterances could not be tokenized; the message lists each with its reason."""


# ---------------------------------------------------------------------------------------------
# Reading data/<split>/


@dataclass
class SplitData:
    name: str
    wavs: dict[str, str]  # utt -> wav path, only utterances with everything needed
    utt2spk: dict[str, str]
    phones: dict[str, list[dict]]  # utt -> score.json phones
    bad: dict[str, str]  # utt -> why it cannot be tokenized


def read_split(split_dir: Path) -> SplitData:
    for name in ("wav.scp", "utt2spk", "score.json"):
        if not (split_dir / name).is_file():
            raise FileNotFoundError(f"{split_dir}/{name} is missing (stage 1 writes it)")
    wavs = read_kaldi_map(split_dir / "wav.scp")
    utt2spk = read_kaldi_map(split_dir / "utt2spk")
    with open(split_dir / "score.json", encoding="utf-8") as f:
        score = json.load(f)
    if not isinstance(score, dict) or not isinstance(score.get("utts"), dict):
        raise ValueError(f"{split_dir}/score.json: expected {{'version': 1, 'utts': {{...}}}}")  # noqa: TRY004 bad file content
    phones, bad = {}, {}
    for utt in sorted(wavs):
        entry = score["utts"].get(utt)
        if entry is None or not entry.get("phones"):
            bad[utt] = f"{split_dir}/score.json has no phones for it"
        elif utt not in utt2spk:
            bad[utt] = f"{split_dir}/utt2spk has no singer for it"
        else:
            phones[utt] = entry["phones"]
    for utt in sorted(set(score["utts"]) - set(wavs)):
        bad[utt] = f"in {split_dir}/score.json but not in wav.scp"
    good = {u: wavs[u] for u in phones}
    return SplitData(split_dir.name, good, {u: utt2spk[u] for u in good}, phones, bad)


# ---------------------------------------------------------------------------------------------
# Step 1: tokenizers


def _fit_features(args: tuple[str, bool, bool]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Worker: (wav path, want log-mel, want SSL features) -> arrays, or Nones if unreadable."""
    path, want_mel, want_ssl = args
    try:
        wav = load_wav(path, sample_rate=SAMPLE_RATE)
    except Exception as err:  # noqa: BLE001 any unreadable file; reported by utterance in the tokenization step
        log.warning("not used for fitting: %s", err)
        return None, None
    mel = log_mel_frames(wav, MelConfig()) if want_mel else None
    ssl = _WORKER["ssl_features"](wav) if want_ssl else None
    return mel, ssl


def _same_config(directory: Path, config) -> bool:
    """A tokenizer directory is reusable when it is complete and was made with `config`."""
    path = directory / "config.yaml"
    if not path.is_file():
        return False
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) == to_dict(config)


def install_pretrained_tokenizers(cfg: TokenizeConfig, pretrained_dir: Path, tokenizer_dir: Path) -> None:
    """Copy tokenizers fitted elsewhere (codec/ and ssl/ as stage 2 writes them, e.g. the mini
    zoo's) into `tokenizer_dir`, so that stage 2 uses them instead of fitting its own: the token
    ids must be those the pretrained LM was trained on. Their configs must be `cfg`'s."""
    for name, section in (("codec", cfg.codec), ("ssl", cfg.ssl)):
        source = pretrained_dir / name
        if not (source / "config.yaml").is_file():
            raise FileNotFoundError(f"{source}/config.yaml: not a tokenizer directory (pretrained tokenizers "
                                    f"need codec/ and ssl/ as stage 2 writes them under dump/tokenizers/)")
        with open(source / "config.yaml", encoding="utf-8") as f:
            theirs = yaml.safe_load(f) or {}
        ours = to_dict(section)
        differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        if differ:
            raise ValueError(f"{source}: made with other {name} settings than the tokenize config: "
                             + ", ".join(f"{k}: {theirs.get(k)!r} there, {ours.get(k)!r} here" for k in differ))
        target = tokenizer_dir / name
        files = sorted(p.name for p in source.iterdir() if p.is_file())
        if target.is_dir():
            _, mismatch, errors = filecmp.cmpfiles(source, target, files, shallow=False)
            if not mismatch and not errors and sorted(p.name for p in target.iterdir()) == files:
                continue
        with atomic_dir(target) as tmp:
            for file in files:
                shutil.copy2(source / file, tmp / file)
        log.info("%s tokenizer: %s (pretrained)", name, source)


def prepare_tokenizers(cfg: TokenizeConfig, fit_data: SplitData, tokenizer_dir: Path, nj: int) -> None:
    codec_dir, ssl_dir = tokenizer_dir / "codec", tokenizer_dir / "ssl"
    fit_codec = cfg.codec.backend == "mini" and not _same_config(codec_dir, cfg.codec)
    fit_ssl = not cfg.ssl.kmeans_path and not _same_config(ssl_dir, cfg.ssl)
    if cfg.codec.backend != "mini" and not _same_config(codec_dir, cfg.codec):
        EspnetCodec(cfg.codec)  # fails here, once, with a clear message when the extra or files are missing
        with atomic_dir(codec_dir) as tmp:
            save_config(cfg.codec, tmp / "config.yaml")
    if cfg.ssl.kmeans_path and not _same_config(ssl_dir, cfg.ssl):
        with atomic_dir(ssl_dir) as tmp:
            SSLTokenizer.from_pretrained_kmeans(cfg.ssl).save(tmp)
    if not (fit_codec or fit_ssl):
        log.info("tokenizers in %s are up to date", tokenizer_dir)
        return

    what = " and ".join(n for n, f in (("codec", fit_codec), ("SSL k-means", fit_ssl)) if f)
    utts = sorted(fit_data.wavs)
    if not utts:
        raise ValueError(f"no usable utterance in the '{fit_data.name}' split to fit the {what} on")
    # Read utterances in a seeded random order until both samples can be full, so a large corpus
    # is not read entirely just to fit k-means.
    order = np.random.default_rng(cfg.codec.seed).permutation(len(utts))
    budget = max(cfg.codec.max_fit_frames if fit_codec else 0, cfg.ssl.max_fit_frames if fit_ssl else 0)
    jobs = [(fit_data.wavs[utts[i]], fit_codec, fit_ssl) for i in order]
    mels, feats, n_frames = [], [], 0
    log.info("fitting the %s on the '%s' split (%d utterances available)", what, fit_data.name, len(utts))
    with _pool(nj, cfg.ssl if fit_ssl else None, None) as pool:
        results = pool.imap(_fit_features, jobs) if pool else map(_fit_features, jobs)
        for mel, feat in tqdm(results, total=len(jobs), desc="features for fitting", mininterval=2):
            if mel is not None:
                mels.append(mel)
            if feat is not None:
                feats.append(feat)
            n_frames += len(mel) if mel is not None else len(feat) if feat is not None else 0
            if budget and n_frames >= 2 * budget:
                break
    if fit_codec:
        start = time.time()
        codec = MiniCodec.fit(mels, cfg.codec)
        with atomic_dir(codec_dir) as tmp:
            codec.save(tmp)
        log.info("mini codec fitted: 8 x %d codes on %d frames in %.1f s", cfg.codec.codebook_size,
                 sum(map(len, mels)), time.time() - start)
    if fit_ssl:
        start = time.time()
        ssl = SSLTokenizer.fit(feats, cfg.ssl)
        with atomic_dir(ssl_dir) as tmp:
            ssl.save(tmp)
        log.info("SSL k-means fitted: %d clusters on %d frames in %.1f s", cfg.ssl.n_clusters,
                 sum(map(len, feats)), time.time() - start)


# ---------------------------------------------------------------------------------------------
# Worker pool: each process holds its own tokenizers (loaded once by the initializer)

_WORKER: dict = {}


def _init_worker(ssl_config: SSLConfig | None, tokenizer_dir: str | None) -> None:
    """Fitting workers get the SSL feature extractor (when the SSL k-means is being fitted);
    tokenizing workers load the saved tokenizers."""
    if ssl_config is not None:
        _WORKER["ssl_features"] = FEATURES[ssl_config.backend](ssl_config)
    if tokenizer_dir is not None:
        _WORKER["codec"] = load_codec(Path(tokenizer_dir) / "codec")
        _WORKER["ssl"] = load_ssl_tokenizer(Path(tokenizer_dir) / "ssl")


@contextlib.contextmanager
def _pool(nj: int, ssl_config: SSLConfig | None, tokenizer_dir: Path | None):
    """`nj` workers (one torch thread each: parallelism comes from --nj processes), or None when
    nj <= 1: the work then runs in this process, set up the same way."""
    args = (ssl_config, str(tokenizer_dir) if tokenizer_dir else None)
    if nj <= 1:
        import torch

        torch.set_num_threads(1)  # as in a worker
        _init_worker(*args)
        yield None
        return
    with process_pool(nj, _init_worker, args) as pool:
        yield pool


# ---------------------------------------------------------------------------------------------
# Step 3: shards


def split_shards(split_dir: Path, utts: list[str], shard_size: int) -> Shards:
    """A split's shards: dump/<split>/data/codec_ssl.<k>.{ark,scp} with svs_lb.<k>,
    num_frames.<k> and bad.<k> (the utterances left out, with their reasons)."""
    return Shards(split_dir / "data", "codec_ssl", utts, shard_size,
                  side_files=("svs_lb", "num_frames", "bad"), failures="bad")


@dataclass
class ShardJob:
    shards: Shards  # the split's
    index: int
    wavs: dict[str, str]
    phones: dict[str, list[dict]]
    layout: str
    max_mismatch: int


def tokenize_utterance(codec: CodecTokenizer, ssl: SSLTokenizer, wav: np.ndarray, phones: list[dict],
                       layout: str, max_mismatch: int, where: str) -> tuple[np.ndarray, list[str]]:
    """One utterance -> (codec_ssl int32 [T, 9], svs_lb tokens). Raises on bad audio or score."""
    # Frame rule: N samples are N // 320 frames for the codec and for every SSL backend (the last
    # partial frame, under 20 ms, is the only audio left out); the streams must agree exactly,
    # so no frame is dropped to make them fit.
    codes = codec.encode(wav)  # [T, 8]
    ssl_ids = ssl.encode(wav)  # [T]
    n_frames = len(wav) // 320
    if len(codes) != n_frames or len(ssl_ids) != n_frames:
        raise ValueError(f"{where}: {len(wav)} samples are {n_frames} frames, but the codec gives {len(codes)} "
                         f"and SSL {len(ssl_ids)}")
    if n_frames == 0:
        raise ValueError(f"{where}: audio shorter than one frame")
    tokens = score_to_tokens(phones, n_frames, layout=layout, max_mismatch=max_mismatch, where=where)
    codec_ssl = np.concatenate([ssl_ids[:, None], codes], axis=1).astype(np.int32)
    return codec_ssl, tokens


def _tokenize_shard(job: ShardJob) -> tuple[int, int]:
    """Worker: tokenize one shard and write its files (the scp last: it marks the shard done)."""
    codec, ssl = _WORKER["codec"], _WORKER["ssl"]
    arrays, svs_lb, num_frames, bad = {}, {}, {}, {}
    for utt in job.shards.units[job.index]:
        try:
            wav = load_wav(job.wavs[utt], sample_rate=SAMPLE_RATE)
            codec_ssl, tokens = tokenize_utterance(
                codec, ssl, wav, job.phones[utt], job.layout, job.max_mismatch, where=utt
            )
        except Exception as err:  # noqa: BLE001 every failure is reported by utterance, never dropped silently
            bad[utt] = f"{type(err).__name__}: {err}"
            continue
        arrays[utt], svs_lb[utt], num_frames[utt] = codec_ssl, " ".join(tokens), str(len(codec_ssl))
    job.shards.write(job.index, arrays, {"svs_lb": svs_lb, "num_frames": num_frames, "bad": bad})
    return len(arrays), len(bad)


# ---------------------------------------------------------------------------------------------
# Step 4: per-split outputs


def write_prompts(split_dir: Path, scp: dict[str, str], utt2spk: dict[str, str], length: int, seed: int) -> dict[str, str]:
    """prompt.scp (+ data/prompt.ark) and utt2prompt; skipped when up to date."""
    utt2prompt = choose_prompts({u: utt2spk[u] for u in scp}, seed)
    fingerprint = hashlib.sha256(json.dumps([length, sorted(utt2prompt.items()), sorted(scp.items())]).encode()).hexdigest()
    marker = split_dir / "data" / "prompt.fingerprint"
    if (split_dir / "prompt.scp").is_file() and marker.is_file() and marker.read_text().strip() == fingerprint:
        return utt2prompt
    source = {}  # prompt utterance -> its frames (several utterances may share one)
    prompts = {}
    for utt, prompt_utt in utt2prompt.items():
        if prompt_utt not in source:
            source[prompt_utt] = kaldiio.load_mat(scp[prompt_utt])
        prompts[utt] = fit_length(source[prompt_utt], length)
    write_ark_scp(split_dir / "data" / "prompt.ark", split_dir / "prompt.scp", prompts)
    write_kaldi_map(split_dir / "utt2prompt", utt2prompt)
    atomic_write_text(marker, fingerprint + "\n")
    return utt2prompt


def _stats(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "max": 0, "mean": 0.0, "total": 0}
    return {"min": int(min(values)), "max": int(max(values)), "mean": float(np.mean(values)), "total": int(sum(values))}


def write_data_json(split_dir: Path, token_list_dir: Path, examples: list[str], num_frames: dict[str, int],
                    svs_lb: dict[str, str], prompt_frames: int, layout: str) -> None:
    """ESPnet-SpeechLM's multi-task data.json: conditions then targets as `path,modality,type`."""
    atomic_write_json(split_dir / "data.json", {
        "task": TASK,
        "vocabularies": [str(token_list_dir / "svs_lb.txt"), str(token_list_dir / "codec_ssl.txt")],
        "data_files": [
            f"{split_dir / 'svs_lb'},svs_lb,text",
            f"{split_dir / 'prompt.scp'},spk,kaldi_ark",
            f"{split_dir / 'codec_ssl.scp'},codec_ssl,kaldi_ark",
        ],
        "speaker_prompt_length": prompt_frames,
        "svs_lb_layout": layout,
        "num_examples": len(examples),
        "examples": examples,
        # Length statistics for batching: per utterance in utt2num_frames, summaries here.
        "length_file": str(split_dir / "utt2num_frames"),
        "length_stats": {
            "codec_ssl_frames": _stats([num_frames[u] for u in examples]),
            "svs_lb_tokens": _stats([len(svs_lb[u].split()) for u in examples]),
        },
    }, indent=1)


# ---------------------------------------------------------------------------------------------
# The stage


def _fingerprint(cfg: TokenizeConfig, tokenizer_dir: Path) -> str:
    """What a shard's content depends on: the tokenizers' files and the svs_lb settings."""
    h = hashlib.sha256(json.dumps(to_dict(cfg.svs_lb), sort_keys=True).encode())
    for path in sorted(p for p in tokenizer_dir.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(tokenizer_dir)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def write_token_lists(token_list_dir: Path, splits: list[SplitData], cfg: TokenizeConfig, ssl_vocab: int,
                      codebook_size: int) -> None:
    # The whole Opencpop inventory, not only the phones this corpus sings, so that a score with any
    # lyric has tokens (a small corpus may never sing `iang`), plus any other phone the corpus uses.
    inventory = set(PHONEMES) | {p["phn"] for s in splits for phones in s.phones.values() for p in phones}
    svs = build_token_list(inventory, cfg.svs_lb.layout)
    atomic_write_text(token_list_dir / "svs_lb.txt", "".join(t + "\n" for t in svs))
    codec_ssl = codec_ssl_tokens(ssl_vocab, 8, codebook_size)  # ESPnet's names: <ssl_code1>.. (1-based)
    atomic_write_text(token_list_dir / "codec_ssl.txt", "".join(t + "\n" for t in codec_ssl))


def run_tokenize(cfg: TokenizeConfig, data_dir: str | Path, dump_dir: str | Path, nj: int = 1,
                 part: Literal["all", "prepare"] = "all", job: JobSlice | None = None,
                 pretrained_dir: str | Path | None = None) -> dict[str, int]:
    """Run stage 2; returns the number of good utterances per split. Raises BadUtterancesError
    (after writing everything the good utterances allow) when some are bad and not `skip_bad`.
    `part="prepare"`: only the tokenizers and token lists. `job`: only that job's shards, with
    the tokenizers already prepared (returns {}). `pretrained_dir`: tokenizers fitted elsewhere
    (install_pretrained_tokenizers), used instead of fitting on `fit_split`."""
    data_dir, dump_dir = Path(data_dir), Path(dump_dir)
    if cfg.fit_split not in cfg.splits:
        raise ValueError(f"fit_split '{cfg.fit_split}' is not one of splits {cfg.splits}")
    splits = [read_split(data_dir / s) for s in cfg.splits]
    tokenizer_dir = dump_dir / "tokenizers"
    if job is not None:  # N jobs must not each fit the tokenizers
        if not (_same_config(tokenizer_dir / "codec", cfg.codec) and _same_config(tokenizer_dir / "ssl", cfg.ssl)):
            raise ValueError(f"{tokenizer_dir}: tokenizers missing or made with other settings; run stage 2 "
                             "with --part prepare before its jobs (run.sh does)")
    else:
        if pretrained_dir is not None:
            install_pretrained_tokenizers(cfg, Path(pretrained_dir), tokenizer_dir)
        prepare_tokenizers(cfg, splits[cfg.splits.index(cfg.fit_split)], tokenizer_dir, nj)
        write_token_lists(dump_dir / "token_list", splits, cfg, cfg.ssl.n_clusters, cfg.codec.codebook_size)

    fingerprint = _fingerprint(cfg, tokenizer_dir)
    for split in splits:
        marker = dump_dir / split.name / "data" / "fingerprint"
        stale = marker.is_file() and marker.read_text().strip() != fingerprint
        if job is not None:  # N jobs must not race to clear data/: the prepare run did
            if stale or not marker.is_file():
                raise ValueError(f"{marker}: missing or stale; run stage 2 with --part prepare before its jobs")
            continue
        if stale:
            log.info("%s: tokenizers or svs_lb settings changed; re-tokenizing", dump_dir / split.name)
            shutil.rmtree(dump_dir / split.name / "data")
        atomic_write_text(marker, fingerprint + "\n")
    if part == "prepare":
        return {}

    jobs, shards_of = [], {}
    unit = 0  # the shards of all splits in order: the work units of a job array
    for split in splits:
        shards = shards_of[split.name] = split_shards(dump_dir / split.name, list(split.wavs), cfg.shard_size)
        for k, shard in enumerate(shards.units):
            mine, unit = job is None or job.owns(unit), unit + 1
            if mine and not shards.done(k):
                jobs.append(ShardJob(shards, k, {u: split.wavs[u] for u in shard},
                                     {u: split.phones[u] for u in shard}, cfg.svs_lb.layout, cfg.svs_lb.max_mismatch))
    n_mine = unit if job is None else len(job.select(range(unit)))
    log.info("%s%d shards to tokenize (%d already done) with %d jobs", f"{job}: " if job else "",
             len(jobs), n_mine - len(jobs), nj)
    if jobs:
        with _pool(min(nj, len(jobs)), None, tokenizer_dir) as pool:
            results = pool.imap_unordered(_tokenize_shard, jobs) if pool else map(_tokenize_shard, jobs)
            for _ in tqdm(results, total=len(jobs), desc="tokenizing shards", mininterval=2):
                pass
    if job is not None:  # merging is the last run's
        return {}

    all_bad, n_good = {}, {}
    for split in splits:
        split_dir = dump_dir / split.name
        shards = shards_of[split.name]
        scp, svs_lb, bad = shards.merged(), shards.merged("svs_lb"), shards.merged("bad")
        num_frames = {u: int(n) for u, n in shards.merged("num_frames").items()}
        bad = {**split.bad, **bad}
        all_bad.update({f"{split.name}/{u}": r for u, r in bad.items()})
        write_kaldi_map(split_dir / "codec_ssl.scp", scp)
        write_kaldi_map(split_dir / "svs_lb", svs_lb)
        write_kaldi_map(split_dir / "utt2num_frames", {u: str(n) for u, n in num_frames.items()})
        if bad:
            write_kaldi_map(split_dir / "bad_utts", bad)
        elif (split_dir / "bad_utts").exists():
            (split_dir / "bad_utts").unlink()
        write_prompts(split_dir, scp, split.utt2spk, cfg.prompt_frames, cfg.prompt_seed)
        write_data_json(split_dir, dump_dir / "token_list", sorted(scp), num_frames, svs_lb,
                        cfg.prompt_frames, cfg.svs_lb.layout)
        n_good[split.name] = len(scp)
        log.info("%s: %d utterances, %d frames (%.1f min); %d bad", split.name, len(scp),
                 sum(num_frames.values()), sum(num_frames.values()) / 50 / 60, len(bad))
    if all_bad:
        listing = "\n".join(f"  {u}: {r}" for u, r in sorted(all_bad.items()))
        message = f"{len(all_bad)} bad utterance(s):\n{listing}"
        if not cfg.skip_bad:
            raise BadUtterancesError(
                message + "\nThe good ones are tokenized and kept; set skip_bad: true (or --skip_bad true) "
                "to finish the stage without the bad ones (listed in dump/<split>/bad_utts)."
            )
        log.warning("skipped %s", message)
    return n_good

