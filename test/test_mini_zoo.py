"""The mini model zoo (local/mini_zoo): its script runs end to end on a toy corpus (so it cannot rot;
CI never re-runs the real pretraining), and the committed artefacts fit what the mini recipe
fine-tunes them with."""
from __future__ import annotations

import dataclasses
import io
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from local.mini.make_corpus import MiniCorpusConfig, _row, plan_corpus
from svslm.data.phonemes import PHONEMES
from svslm.evaluate.ctc_asr import load_ctc_recognizer
from svslm.evaluate.per import phone_errors
from svslm.lm.checkpoint import load_checkpoint
from svslm.lm.config import LMRecipeConfig
from svslm.tokenize.config import TokenizeConfig
from svslm.utils.audio import SAMPLE_RATE
from svslm.utils.config import load_config, to_dict
from svslm.vocoder.config import VocoderConfig
from svslm.vocoder.train import latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "local/mini_zoo"
# Big enough for conf/tokenize/tiny.yaml's k-means (256 codes a codebook need 256+ frames): 5 training phrases.
TOY_CORPUS = {
    "seed": 9, "first_song": 3001, "train_songs": 3, "test_songs": 1, "phrases_per_train_song": 2,
    "phrases_per_test_song": 1, "dev_utts": 1, "min_phrase_seconds": 2.0, "max_phrase_seconds": 3.0,
    "singers": [{"singer": 101, "low_midi": 48, "high_midi": 67, "tract_scale": 0.9}],
}


TOY_SPEECH = {
    "style": "speech", "seed": 9, "first_song": 4001, "train_songs": 3, "test_songs": 1,
    "phrases_per_train_song": 1, "phrases_per_test_song": 1, "dev_utts": 1, "min_phrase_seconds": 2.0,
    "max_phrase_seconds": 3.0, "full_coverage": False,
    "singers": [{"singer": 201, "low_midi": 48, "high_midi": 60, "tract_scale": 0.9}],
}


@pytest.mark.slow
def test_zoo_script_runs_and_exports_what_the_recipe_uses(tmp_path):
    """local/mini_zoo/run.sh on toy corpora, a few steps each: tokenizers, a speech-pretrained SLM in
    ESPnet format (pretrained on speech, then on short speech), a vocoder and a recogniser come out,
    in the forms the mini recipe loads."""
    corpus, speech = tmp_path / "toy_corpus.yaml", tmp_path / "toy_speech.yaml"
    corpus.write_text(yaml.safe_dump({**TOY_CORPUS, "full_coverage": False}))
    speech.write_text(yaml.safe_dump(TOY_SPEECH))
    models = tmp_path / "models"
    cmd = [str(ZOO / "run.sh"), "--work_dir", str(tmp_path / "work"), "--models_dir", str(models),
           "--corpus_config", str(corpus), "--speech_config", str(speech),
           "--speech_short_overrides", "first_song=6001 train_songs=6 min_phrase_seconds=0.6 max_phrase_seconds=1.5",
           "--voc_steps", "2", "--nj", "1", "--slm_args", "--override train.max_epochs=1", "--slm_short_epochs", "4",
           "--vocoder_args", "--override train.batch_size=1", "--asr_args", "--override train.epochs=2",
           "--asr_corpus_overrides", "first_song=5001 train_songs=2"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]

    work = tmp_path / "work"
    utts = [line.split()[0] for line in (work / "singing/data/train/wav.scp").read_text().splitlines()]
    assert utts and all(u.startswith("acesinger_101#300") for u in utts), utts  # the zoo's songs (3001..) and voice
    speech_utts = [line.split()[0] for line in (work / "speech/data/train/wav.scp").read_text().splitlines()]
    assert speech_utts and all(u.startswith("acesinger_201#400") for u in speech_utts), speech_utts
    short_utts = [line.split()[0] for line in (work / "speech_short/data/train/wav.scp").read_text().splitlines()]
    assert short_utts and all(u.startswith("acesinger_201#600") for u in short_utts), short_utts

    # Tokenizers: fitted on the singing audio, the speech tokenized with them, exported as they are.
    for name in ("codec", "ssl"):
        for f in (work / "singing/dump/tokenizers" / name).iterdir():
            assert (models / "tokenizers" / name / f.name).read_bytes() == f.read_bytes()
            assert (work / "speech/dump/tokenizers" / name / f.name).read_bytes() == f.read_bytes()
            assert (work / "speech_short/dump/tokenizers" / name / f.name).read_bytes() == f.read_bytes()

    # The SLM: ESPnet format, fp16, its weights the second (short-speech) pretraining's, which
    # started from the first's best/, with every svs_lb token.
    assert f"--init_dir {work}/slm/best" in proc.stderr
    slm_state = torch.load(models / "slm/model.pth", map_location="cpu", weights_only=True)
    trained = torch.load(work / "slm_short/best/model.pth", map_location="cpu", weights_only=True)
    first = torch.load(work / "slm/best/model.pth", map_location="cpu", weights_only=True)
    # the short run trained on (4 one-step epochs: the first two steps, in the warm-up, change nothing)
    assert any(not torch.equal(first[k], v) for k, v in trained.items())
    assert slm_state.keys() == trained.keys() and "corelm.emb.weight" in slm_state
    for name, value in trained.items():
        assert slm_state[name].dtype == torch.float16
        torch.testing.assert_close(slm_state[name].float(), value.float(), rtol=1e-3, atol=1e-4)
    model = load_checkpoint(models / "slm")
    assert {"svs_iang", "svs_60", "svs_SP"} <= set(model.vocab.token_list)  # every Opencpop phone, any lyric

    # The vocoder: fp16 weights of the newest checkpoint, no optimiser state.
    ckpt = latest_checkpoint(models / "vocoder/checkpoints")
    assert ckpt is not None
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert "optim_g" not in state  # weights only: the zoo ships no optimiser state
    assert all(v.dtype == torch.float16 for v in state["generator"].values() if v.is_floating_point())
    full = torch.load(latest_checkpoint(work / "vocoder/checkpoints"), map_location="cpu", weights_only=True)
    for name, value in full["generator"].items():
        torch.testing.assert_close(state["generator"][name].float(), value.float(), rtol=1e-3, atol=1e-4)

    # The recipe's fine-tuning config starts from the exported zoo vocoder (what run.sh passes) and trains on.
    ft = subprocess.run(
        ["python", "-m", "svslm.bin.vocoder_train", "--config", str(ROOT / "conf/vocoder/tiny_finetune.yaml"),
         "--data_dir", str(work / "singing/data"), "--exp_dir", str(tmp_path / "ft"),
         "--override", f"train.init_from={models / 'vocoder'}", "train.max_steps=1", "train.batch_size=1"],
        check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert ft.returncode == 0, ft.stderr[-4000:]
    assert "initialised generator and discriminators from" in ft.stderr + ft.stdout

    # Stages 5-6: the recogniser trained on its own corpus (the zoo voices on other songs), exported
    # in fp16, loads and transcribes.
    asr_utts = [line.split()[0] for line in (work / "asr_corpus/data/train/wav.scp").read_text().splitlines()]
    assert asr_utts and all(u.startswith("acesinger_101#500") for u in asr_utts), asr_utts
    assert f"pretraining on {work}/asr_corpus/data" in proc.stderr
    trained = torch.load(work / "asr/model.pth", map_location="cpu", weights_only=True)
    exported = torch.load(models / "asr/model.pth", map_location="cpu", weights_only=True)
    assert exported.keys() == trained.keys()
    for name, value in trained.items():
        assert exported[name].dtype == torch.float16
        torch.testing.assert_close(exported[name].float(), value, rtol=1e-3, atol=1e-4)
    assert not (models / "asr/last.pth").exists()  # no optimiser state in the zoo
    test_wav = (work / "singing/data/test/wav.scp").read_text().split()[1]
    wav, _ = sf.read(test_wav, dtype="float32")
    assert all(isinstance(p, str) for p in load_ctc_recognizer(models / "asr").recognize(wav))


def _committed_vocoder() -> dict:
    ckpt = latest_checkpoint(ZOO / "models/vocoder/checkpoints")
    if ckpt is None:
        pytest.fail("local/mini_zoo/models/vocoder has no checkpoint: run local/mini_zoo/run.sh")
    return torch.load(ckpt, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("config", ["tiny.yaml", "tiny_finetune.yaml"])
def test_committed_zoo_vocoder_matches_the_mini_recipe_configs(config):
    """run.sh fine-tunes the zoo vocoder with the mini configs: mel and geometry must agree,
    else stage 5 fails (mel) or the weights do not load (geometry)."""
    state = _committed_vocoder()
    assert all(v.dtype == torch.float16 for v in state["generator"].values() if v.is_floating_point())
    recipe = to_dict(load_config(ROOT / "conf/vocoder" / config, VocoderConfig))
    for section in ("mel", "generator", "discriminator"):
        assert state["config"][section] == recipe[section], section


def _zoo_overrides(variable: str) -> list[str]:
    """run.sh's default `variable` (asr_corpus_overrides, speech_short_overrides): the corpus it
    makes is its base config with them."""
    match = re.search(rf'^{variable}="([^"]*)"', (ZOO / "run.sh").read_text(), re.MULTILINE)
    assert match, f"local/mini_zoo/run.sh sets no {variable}"
    return match.group(1).split()


def test_zoo_corpora_share_no_song_and_no_singer_with_the_mini_corpus():
    def songs(cfg: MiniCorpusConfig) -> set[int]:
        return set(range(cfg.first_song, cfg.first_song + cfg.train_songs + cfg.test_songs))

    mini = load_config(ROOT / "conf/data/mini_corpus.yaml", MiniCorpusConfig)
    zoo = {"singing": load_config(ZOO / "conf/zoo_corpus.yaml", MiniCorpusConfig),
           "speech": load_config(ZOO / "conf/zoo_speech.yaml", MiniCorpusConfig),
           "speech_short": load_config(ZOO / "conf/zoo_speech.yaml", MiniCorpusConfig,
                                       _zoo_overrides("speech_short_overrides")),
           "asr": load_config(ZOO / "conf/zoo_corpus.yaml", MiniCorpusConfig, _zoo_overrides("asr_corpus_overrides"))}
    mini_singers = {s.singer for s in mini.singers}
    for name, cfg in zoo.items():
        assert not songs(mini) & songs(cfg), name
        assert not mini_singers & {s.singer for s in cfg.singers}, name
        assert len(cfg.singers) >= 16, name
    for a, b in [("asr", "singing"), ("asr", "speech"), ("asr", "speech_short"), ("speech", "speech_short"),
                 ("singing", "speech_short")]:
        assert not songs(zoo[a]) & songs(zoo[b]), (a, b)
    assert zoo["asr"].train_songs * zoo["asr"].phrases_per_train_song >= 10 * zoo["singing"].train_songs


# The committed recogniser reads _unheard_singing(8) (63 phones) at 12.7% PER, the mini test set's
# ground truth at 17.3% (local/mini_zoo/README.md); the one before it, trained on 3-6 s phrases,
# read the mini test set at 51.9%: 30% is issue 17's bound on the ground truth.
PER_BOUND = 30.0


def _unheard_singing(n_phrases: int) -> list[tuple[np.ndarray, list[str]]]:
    """Phrases of a song neither the zoo (3001..) nor the mini corpus (2001..) has, by the mini
    corpus's singers (the zoo has other voices): (16 kHz audio, phones)."""
    cfg = dataclasses.replace(load_config(ROOT / "conf/data/mini_corpus.yaml", MiniCorpusConfig),
                              seed=77, sample_rate=SAMPLE_RATE, first_song=2901, train_songs=0, test_songs=1,
                              phrases_per_test_song=n_phrases, dev_utts=0, full_coverage=False)
    n_singers = len(cfg.singers)
    plan = plan_corpus(cfg)  # each phrase by every singer; phrase k is taken by singer k mod n
    out = []
    for k in range(n_phrases):
        row = _row(plan[k * n_singers + k % n_singers], cfg)
        wav, sr = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
        assert sr == SAMPLE_RATE
        out.append((wav, row["phn"]))
    return out


def test_committed_zoo_recogniser_reads_singing_it_never_heard():
    """models/asr is what ./run.sh --pretrained_asr scores PER with: it must load (fp16 weights) and
    read a new song by new voices far better than chance (a recogniser that memorised the zoo's
    lyrics, or random weights, is at 85-100% PER)."""
    recognizer = load_ctc_recognizer(ZOO / "models/asr")
    assert all(v.dtype == torch.float16 for v in torch.load(ZOO / "models/asr/model.pth", weights_only=True).values())
    edits = ref_len = 0
    for wav, phones in _unheard_singing(8):
        err = phone_errors(recognizer.recognize(wav), phones)
        edits, ref_len = edits + err.edits, ref_len + err.ref_len
    assert ref_len > 50
    assert 100.0 * edits / ref_len < PER_BOUND


def test_committed_tokenizers_and_slm_fit_the_mini_recipe_configs():
    """run.sh on mini tokenizes with models/tokenizers and fine-tunes models/slm: stage 2 refuses
    tokenizers made with other codec/SSL settings than conf/tokenize/tiny.yaml, stage 3 an LM whose
    geometry is not conf/lm/tiny.yaml's `model`, so the committed parts must match both."""
    tokenize = load_config(ROOT / "conf/tokenize/tiny.yaml", TokenizeConfig)
    for name, section in (("codec", tokenize.codec), ("ssl", tokenize.ssl)):
        saved = yaml.safe_load((ZOO / "models/tokenizers" / name / "config.yaml").read_text())
        assert saved == to_dict(section), name
    lm = load_config(ROOT / "conf/lm/tiny.yaml", LMRecipeConfig)
    assert lm.model == load_config(ZOO / "conf/slm.yaml", LMRecipeConfig).model
    model = load_checkpoint(ZOO / "models/slm")
    cfg = model.corelm.decoders.model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size) == (
        lm.model.hidden_size, lm.model.num_hidden_layers, lm.model.num_attention_heads, lm.model.intermediate_size)
    # Its config.yaml says how it was pretrained (the sequence of conf/slm.yaml, which conf/lm/tiny.yaml
    # fine-tunes with): a checkpoint that claims another prompt length is read wrongly by any tool
    # that builds its sequence from the checkpoint (lm_probe, bench/lm_condition_use.py).
    assert model.sequence == load_config(ZOO / "conf/slm.yaml", LMRecipeConfig).sequence == lm.sequence
    state = torch.load(ZOO / "models/slm/model.pth", map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    # Every Opencpop phone has its svs_lb token, so any lyric sings with the fine-tuned SLM.
    assert {f"svs_{p}" for p in PHONEMES} <= set(model.vocab.token_list)
