"""Stage 2 end to end on a tiny generated corpus: the dump/ contract, resuming, bad utterances."""
from __future__ import annotations

import json
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from svslm.bin.tokenize import main as tokenize_main
from svslm.data.phonemes import PHONEMES
from svslm.tokenize.codec import load_codec
from svslm.tokenize.config import CodecConfig, SSLConfig, SvsLbConfig, TokenizeConfig
from svslm.tokenize.pipeline import BadUtterancesError, run_tokenize
from svslm.tokenize.ssl import load_ssl_tokenizer
from svslm.utils.audio import load_wav, save_wav
from svslm.utils.config import load_config
from svslm.utils.fileio import read_kaldi_map

# Every test here shares a stage 2 run through spawned worker pools (~12 s before the first test).
pytestmark = pytest.mark.slow

SR = 16000


def make_corpus(root: Path, n_utts: dict[str, int], singers=("alto", "bass"), seed=0) -> None:
    """data/<split>/{wav.scp,utt2spk,score.json} as stage 1 writes them: sung vowels on the
    score's pitches (two harmonics), rests silent, 6 notes of 0.15-0.5 s per utterance."""
    rng = np.random.default_rng(seed)
    for split, n in n_utts.items():
        d = root / split
        (d / "wav").mkdir(parents=True)
        wavs, utt2spk, utts = {}, {}, {}
        for s, singer in enumerate(singers):
            for i in range(n):
                utt, t, phones, notes = f"{singer}#{split}{i:02d}", 0.0, [], []
                for k in range(6):
                    dur = round(float(rng.uniform(0.15, 0.5)), 3)
                    midi = 0 if k in (0, 5) else int(rng.integers(55, 72))
                    phn = "SP" if midi == 0 else "aiue"[k % 4]
                    notes.append({"start": t, "end": round(t + dur, 3), "midi": midi, "lyric": phn, "phns": [phn], "slur": False})
                    phones.append({"phn": phn, "start": t, "end": round(t + dur, 3), "midi": midi, "note": k})
                    t = round(t + dur, 3)
                x = 0.003 * rng.standard_normal(round(t * SR))
                for p in phones:
                    if p["midi"]:
                        a, b = int(p["start"] * SR), int(p["end"] * SR)
                        f0 = 440 * 2 ** ((p["midi"] - 69) / 12) * (1 + 0.15 * s)
                        tt = np.arange(b - a) / SR
                        x[a:b] += 0.3 * np.sin(2 * np.pi * f0 * tt) + 0.1 * np.sin(4 * np.pi * f0 * tt)
                path = d / "wav" / f"{singer}_{split}{i:02d}.wav"
                save_wav(path, x, SR)
                wavs[utt], utt2spk[utt], utts[utt] = str(path), singer, {"notes": notes, "phones": phones}
        (d / "wav.scp").write_text("".join(f"{u} {wavs[u]}\n" for u in sorted(wavs)))
        (d / "utt2spk").write_text("".join(f"{u} {utt2spk[u]}\n" for u in sorted(wavs)))
        (d / "score.json").write_text(json.dumps({"version": 1, "utts": utts}))


def tiny_config(**changes) -> TokenizeConfig:
    cfg = TokenizeConfig(
        codec=CodecConfig(codebook_size=16, kmeans_n_init=1, kmeans_batch_size=512),
        ssl=SSLConfig(n_clusters=8, kmeans_n_init=1, kmeans_batch_size=512),
        prompt_frames=40,
        shard_size=3,
    )
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    root = tmp_path_factory.mktemp("stage2")
    make_corpus(root / "data", {"train": 4, "dev": 2, "test": 1})
    cfg_path = root / "tiny.yaml"
    cfg_path.write_text(
        "codec: {codebook_size: 16, kmeans_n_init: 1, kmeans_batch_size: 512}\n"
        "ssl: {n_clusters: 8, kmeans_n_init: 1, kmeans_batch_size: 512}\n"
        "prompt_frames: 40\nshard_size: 3\n"
    )
    argv = ["--config", str(cfg_path), "--data_dir", str(root / "data"), "--dump_dir", str(root / "dump"), "--nj", "2"]
    assert tokenize_main(argv) == 0
    return root


def test_codec_ssl_svs_lb_and_frame_counts_agree(stage):
    dump = stage / "dump"
    score = json.loads((stage / "data/train/score.json").read_text())["utts"]
    codec_ssl = kaldiio.load_scp(str(dump / "train/codec_ssl.scp"))
    num_frames = read_kaldi_map(dump / "train/utt2num_frames")
    svs_lb = read_kaldi_map(dump / "train/svs_lb")
    assert set(codec_ssl) == set(num_frames) == set(svs_lb) == set(score)
    for utt in codec_ssl:
        frames = codec_ssl[utt]
        assert frames.dtype == np.int32 and frames.shape == (int(num_frames[utt]), 9)
        assert frames[:, 0].max() < 8 and frames[:, 1:].max() < 16 and frames.min() >= 0
        tokens = svs_lb[utt].split()
        assert len(tokens) == 2 * len(frames)  # one (phone, pitch) pair per codec frame
        end = score[utt]["phones"][-1]["end"]
        assert abs(len(frames) - end * 50) <= 2
        second = score[utt]["phones"][1]  # the first sung phone, at a known frame
        mid = int((second["start"] + second["end"]) / 2 * 50)
        assert tokens[2 * mid : 2 * mid + 2] == [f"svs_{second['phn']}", f"svs_{second['midi']}"]
    codec = load_codec(dump / "tokenizers/codec")
    assert codec.codebook_size == 16 and load_ssl_tokenizer(dump / "tokenizers/ssl").vocab_size == 8


def test_prompts_are_tiled_codec_ssl_of_the_same_singer(stage):
    dump = stage / "dump/dev"
    utt2prompt = read_kaldi_map(dump / "utt2prompt")
    prompts = kaldiio.load_scp(str(dump / "prompt.scp"))
    codec_ssl = kaldiio.load_scp(str(dump / "codec_ssl.scp"))
    assert set(utt2prompt) == set(prompts) == set(codec_ssl)
    for utt, source in utt2prompt.items():
        assert source != utt and source.split("#")[0] == utt.split("#")[0]
        assert prompts[utt].shape == (40, 9) and prompts[utt].dtype == np.int32
        src = codec_ssl[source]
        np.testing.assert_array_equal(prompts[utt][: min(40, len(src))], src[:40])


def test_token_lists_and_data_json(stage):
    dump = stage / "dump"
    svs = (dump / "token_list/svs_lb.txt").read_text().split("\n")[:-1]
    # Every Opencpop phone has a token, also those this toy corpus never sings (`iang`), so any lyric tokenizes.
    assert svs == [f"svs_{p}" for p in sorted(PHONEMES)] + [f"svs_{m}" for m in range(128)]
    assert "svs_iang" in svs and "svs_iang" not in (dump / "train/svs_lb").read_text()
    codec_ssl = (dump / "token_list/codec_ssl.txt").read_text().split("\n")[:-1]
    assert len(codec_ssl) == 8 + 8 * 16
    assert codec_ssl[0] == "<ssl_code1>" and codec_ssl[8] == "<codec_layer0_code0>" and codec_ssl[-1] == "<codec_layer7_code15>"
    for split, n in (("train", 8), ("dev", 4), ("test", 2)):
        meta = json.loads((dump / split / "data.json").read_text())
        assert meta["task"] == "svs" and meta["num_examples"] == n == len(meta["examples"])
        assert meta["examples"] == sorted(read_kaldi_map(dump / split / "codec_ssl.scp"))
        files = [f.split(",") for f in meta["data_files"]]
        assert [(m, t) for _, m, t in files] == [("svs_lb", "text"), ("spk", "kaldi_ark"), ("codec_ssl", "kaldi_ark")]
        assert [Path(p).name for p, _, _ in files] == ["svs_lb", "prompt.scp", "codec_ssl.scp"]
        assert all(Path(p).is_file() for p, _, _ in files)
        assert meta["speaker_prompt_length"] == 40
        frames = [int(v) for v in read_kaldi_map(dump / split / "utt2num_frames").values()]
        assert meta["length_stats"]["codec_ssl_frames"] == {
            "min": min(frames), "max": max(frames), "mean": pytest.approx(np.mean(frames)), "total": sum(frames)
        }


def test_rerun_skips_finished_shards_and_redoes_a_missing_one(tmp_path):
    make_corpus(tmp_path / "data", {"train": 4, "dev": 1, "test": 1})
    cfg = tiny_config()
    run_tokenize(cfg, tmp_path / "data", tmp_path / "dump")
    shard_files = sorted((tmp_path / "dump/train/data").glob("codec_ssl.*"))
    before = {p: p.stat().st_mtime_ns for p in shard_files}
    merged = (tmp_path / "dump/train/codec_ssl.scp").read_text()
    (tmp_path / "dump/train/data/codec_ssl.1.scp").unlink()  # as if killed while writing shard 1
    run_tokenize(cfg, tmp_path / "data", tmp_path / "dump")
    after = {p: p.stat().st_mtime_ns for p in shard_files}
    changed = {p.name for p in shard_files if before[p] != after[p]}
    assert changed == {"codec_ssl.1.ark", "codec_ssl.1.scp"}
    assert (tmp_path / "dump/train/codec_ssl.scp").read_text() == merged
    # a different svs_lb layout changes what shards hold: they are all redone
    run_tokenize(tiny_config(svs_lb=SvsLbConfig(layout="fork")), tmp_path / "data", tmp_path / "dump")
    assert "<svs_placeholder>" in (tmp_path / "dump/train/svs_lb").read_text()
    assert (tmp_path / "dump/token_list/svs_lb.txt").read_text().endswith("<svs_placeholder>\n")


def test_bad_utterances_are_all_reported_and_good_ones_kept(tmp_path):
    make_corpus(tmp_path / "data", {"train": 4, "dev": 1, "test": 1})
    (tmp_path / "data/train/wav/alto_train01.wav").write_bytes(b"not a wav")
    score_path = tmp_path / "data/dev/score.json"
    score = json.loads(score_path.read_text())
    for p in score["utts"]["bass#dev00"]["phones"][-1:]:
        p["end"] += 0.3  # the score now ends 15 frames after the audio
    score_path.write_text(json.dumps(score))
    with pytest.raises(BadUtterancesError) as err:
        run_tokenize(tiny_config(), tmp_path / "data", tmp_path / "dump")
    message = str(err.value)
    assert "2 bad utterance(s)" in message
    assert "train/alto#train01: AudioError" in message and "dev/bass#dev00: AlignmentError" in message
    assert len(read_kaldi_map(tmp_path / "dump/train/codec_ssl.scp")) == 7  # the good ones are there

    run_tokenize(tiny_config(skip_bad=True), tmp_path / "data", tmp_path / "dump")
    assert set(read_kaldi_map(tmp_path / "dump/train/bad_utts")) == {"alto#train01"}
    meta = json.loads((tmp_path / "dump/dev/data.json").read_text())
    assert meta["examples"] == ["alto#dev00"]


def test_pretrained_tokenizers_are_used_instead_of_fitting(stage, tmp_path):
    """--pretrained_tokenizers (the mini zoo's): another corpus is tokenized with those codebooks,
    also over a dump that fitted its own with the same settings; other settings are an error."""
    pretrained = stage / "dump/tokenizers"
    make_corpus(tmp_path / "data", {"train": 3, "dev": 1, "test": 1}, singers=("tenor",), seed=7)
    cfg_path = stage / "tiny.yaml"
    base = ["--config", str(cfg_path), "--data_dir", str(tmp_path / "data"), "--dump_dir", str(tmp_path / "dump")]
    assert tokenize_main(base) == 0  # fits its own first: other audio, other codebooks
    own = np.load(tmp_path / "dump/tokenizers/codec/codebooks.npy")
    zoo = np.load(pretrained / "codec/codebooks.npy")
    assert own.shape == zoo.shape and not np.array_equal(own, zoo)
    assert tokenize_main(base + ["--pretrained_tokenizers", str(pretrained)]) == 0
    for name in ("codec", "ssl"):
        for f in (pretrained / name).iterdir():
            assert (tmp_path / "dump/tokenizers" / name / f.name).read_bytes() == f.read_bytes()
    codec = load_codec(pretrained / "codec")
    wavs = read_kaldi_map(tmp_path / "data/train/wav.scp")
    codes = kaldiio.load_scp(str(tmp_path / "dump/train/codec_ssl.scp"))
    utt = min(wavs)
    np.testing.assert_array_equal(codes[utt][:, 1:], codec.encode(load_wav(wavs[utt], SR))[: len(codes[utt])])

    other = tmp_path / "other.yaml"
    other.write_text(cfg_path.read_text().replace("codebook_size: 16", "codebook_size: 32"))
    with pytest.raises(ValueError, match=r"codec settings.*codebook_size: 16 there, 32 here"):
        run_tokenize(load_config(other, TokenizeConfig), tmp_path / "data", tmp_path / "dump2", pretrained_dir=pretrained)
