"""`svslm sing` glue: phrase splitting and joining, speaker prompts, `sing()` and the CLI.

Synthesis goes through a stand-in with `Synthesizer.synthesize`'s interface whose audio is, per
frame, the frame's MIDI pitch of the phrase it was given: the joined song then shows, sample by
sample, whether every phrase landed where the score puts it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
from music21 import meter, note, stream, tempo
from test_sing_formats import (
    PHRASE_SECONDS,
    phrase_ds,
    phrase_musicxml,
    phrase_ust,
    phrase_ustx,
)

from svslm.bin.sing import main as sing_main
from svslm.data.phonemes import PHONEMES
from svslm.flow.config import FlowConfig
from svslm.flow.model import FlowModel
from svslm.lm.checkpoint import save_checkpoint
from svslm.lm.model import SpeechLM
from svslm.lm.pretrained import pretrained_token_list
from svslm.lm.vocab import Vocabulary
from svslm.sing import sing
from svslm.sing.phrases import join_phrases, split_phrases
from svslm.sing.prompt import UnknownSingerError
from svslm.sing.reader import read_score
from svslm.sing.score import ScoreError, ScoreNote, build_score
from svslm.sing.synthesize import SingConfig, model_phones
from svslm.testing.lm import codec_ssl_tokens, tiny_lm_config
from svslm.tokenize.codec import MiniCodec
from svslm.tokenize.config import CodecConfig, SSLConfig
from svslm.tokenize.ssl import SSLTokenizer
from svslm.tokenize.svs_lb import build_token_list, phones_to_frames
from svslm.utils.audio import HOP_LENGTH as HOP
from svslm.utils.config import load_config
from svslm.utils.mel import MelConfig
from svslm.vocoder.config import VocoderConfig
from svslm.vocoder.models import Generator

P = 30  # prompt frames of the fake recipe
CONF = Path(__file__).resolve().parents[1] / "conf"


class PitchSynthesizer:
    """Stand-in for svslm.infer.pipeline.Synthesizer: each frame sounds its MIDI pitch / 100."""

    def __init__(self, codec=None):
        self.codec = codec
        self.calls = []

    def synthesize(self, phones, prompt, condition="LM + Flow2 + Voc", n_flow_steps=None, guidance=None, seed=0,
                   prompt_audio=None):
        self.calls.append({"phones": phones, "prompt": prompt, "condition": condition, "n_flow_steps": n_flow_steps,
                           "seed": seed, "prompt_audio": prompt_audio})
        _, midi = phones_to_frames(phones)
        return np.repeat(midi.astype(np.float32) / 100, HOP)


def song_score(pieces):
    """(seconds, lyric | 'SP', midi) pieces one after another -> score.json entry."""
    notes, t = [], 0.0
    for k, (seconds, lyric, midi) in enumerate(pieces):
        notes.append(ScoreNote(t, t + seconds, midi, lyric, f"note {k}"))
        t += seconds
    return build_score(notes, "test")


SONG = [(2.0, "la", 60), (1.0, "SP", 0), (2.0, "li", 62), (0.5, "SP", 0), (2.0, "lu", 64), (0.3, "SP", 0)]


def test_phrases_are_cut_inside_silences_and_join_back_to_the_song():
    score = song_score(SONG)
    song_phns, song_midi = phones_to_frames(score["phones"])
    phrases = split_phrases(score["phones"], max_seconds=3.2, overlap=2)
    assert len(phrases) == 3
    assert phrases[0].start == 0 and phrases[-1].end == len(song_phns) == 390
    for k, phrase in enumerate(phrases):
        assert phrase.n_frames <= 160
        phns, midi = phones_to_frames(phrase.phones)  # each phrase keeps the song's frames exactly
        assert phns == song_phns[phrase.start:phrase.end] and (midi == song_midi[phrase.start:phrase.end]).all()
        if k:  # the overlap with the phrase before lies inside a silence
            assert set(song_phns[phrase.start:phrases[k - 1].end]) == {"SP"}
    synth = PitchSynthesizer()
    wavs = [synth.synthesize(p.phones, None) for p in phrases]
    song = join_phrases(phrases, wavs, overlap=2)
    assert len(song) == 390 * HOP
    np.testing.assert_allclose(song, np.repeat(song_midi / 100, HOP), atol=1e-6)


def test_crossfade_is_smooth_where_phrases_overlap():
    score = song_score(SONG)
    phrases = split_phrases(score["phones"], max_seconds=3.2, overlap=2)
    ones = [np.ones(p.n_frames * HOP, dtype=np.float32) for p in phrases]
    song = join_phrases(phrases, ones, overlap=2)
    np.testing.assert_allclose(song, 1.0, atol=1e-6)  # complementary gains: constant through each overlap


def test_a_stretch_without_silence_stays_one_phrase():
    score = song_score([(4.0, "la", 60), (0.5, "SP", 0)])
    phrases = split_phrases(score["phones"], max_seconds=2.0, overlap=2)
    assert [(p.start, p.end) for p in phrases] == [(0, 225)]


# ---- sing() on a fake recipe directory ----------------------------------------------------------
@pytest.fixture
def recipe(tmp_path):
    """data/train (two singers) and dump/train (codec_ssl frames, prompts) as stages 1-2 write them."""
    data, dump = tmp_path / "data" / "train", tmp_path / "dump" / "train"
    data.mkdir(parents=True)
    dump.mkdir(parents=True)
    lengths = {"alto#001": 40, "alto#002": 60, "bass#001": 50}
    (data / "spk2utt").write_text("alto alto#001 alto#002\nbass bass#001\n")
    score = {"version": 1, "utts": {u: {"notes": [{"midi": m}, {"midi": 0}], "phones": []}
                                    for u, m in zip(lengths, (55, 72, 60))}}
    (data / "score.json").write_text(json.dumps(score))
    # Utterance i: frame t holds (i + t) % 16 in every stream (ids inside a 16-code vocabulary).
    frames = {u: np.repeat((i + np.arange(n, dtype=np.int32))[:, None] % 16, 9, axis=1)
              for i, (u, n) in enumerate(lengths.items())}
    kaldiio.save_ark(str(dump / "codec_ssl.ark"), frames, scp=str(dump / "codec_ssl.scp"), write_function="numpy")
    prompts = {u: np.zeros((P, 9), dtype=np.int32) for u in lengths}
    kaldiio.save_ark(str(dump / "prompt.ark"), prompts, scp=str(dump / "prompt.scp"), write_function="numpy")
    (dump / "utt2num_frames").write_text("".join(f"{u} {n}\n" for u, n in lengths.items()))
    (dump / "data.json").write_text(json.dumps({"svs_lb_layout": "frame"}))  # stage 2's svs_lb layout
    return tmp_path


def write_song(path):
    score = stream.Score()
    part = stream.Part()
    for number, items in enumerate([[("C4", 2, "我"), ("rest", 2, None)], [("D4", 2, "们"), ("rest", 2, None)]], 1):
        measure = stream.Measure(number=number)
        if number == 1:
            measure.insert(0, meter.TimeSignature("4/4"))
            measure.insert(0, tempo.MetronomeMark(number=120))
        for pitch, ql, lyric in items:
            element = note.Rest(quarterLength=ql) if pitch == "rest" else note.Note(pitch, quarterLength=ql)
            if lyric:
                element.lyric = lyric
            measure.append(element)
        part.append(measure)
    score.insert(0, part)
    score.write("musicxml", fp=str(path))
    return path


CONFIG = SingConfig(max_phrase_seconds=3.0)


def test_sing_writes_the_song_with_the_singers_prompt(recipe, tmp_path):
    synth = PitchSynthesizer()
    out = tmp_path / "song.wav"
    wav = sing(write_song(tmp_path / "s.musicxml"), "alto", out, recipe_dir=recipe, flow_steps=3, seed=7,
               key_shift=2, config=CONFIG, synthesizer=synth)
    audio, sr = sf.read(out)
    assert sr == 16000 and len(audio) == len(wav) == 200 * HOP  # 4 s score
    assert len(synth.calls) == 2  # cut in the first rest
    call = synth.calls[0]
    assert (call["condition"], call["n_flow_steps"], call["seed"]) == ("LM + Flow2 + Voc", 3, 7)
    # The prompt is alto's longest utterance (alto#002, the second: 60 frames), cropped to P.
    np.testing.assert_array_equal(call["prompt"][:, 0], (1 + np.arange(P)) % 16)
    assert wav[10 * HOP] == pytest.approx(0.62) and wav[110 * HOP] == pytest.approx(0.64)  # key shift +2
    assert np.abs(wav[60 * HOP:90 * HOP]).max() == 0.0  # the rest between the phrases
    (recipe / "dump/train/utt2num_frames").unlink()  # a dump stage 2 did not finish: named, not guessed
    with pytest.raises(FileNotFoundError, match="utt2num_frames is missing"):
        sing(tmp_path / "s.musicxml", "alto", None, recipe_dir=recipe, config=CONFIG, synthesizer=synth)


def test_sing_with_a_reference_recording(recipe, tmp_path):
    rng = np.random.default_rng(0)
    mel = MelConfig()
    codec = MiniCodec(rng.normal(size=(8, 4, mel.n_mels)).astype(np.float32), mel, CodecConfig(codebook_size=4))
    ssl = SSLTokenizer(SSLConfig(n_clusters=5), rng.normal(size=(5, 39)).astype(np.float32))
    ssl.save(recipe / "dump" / "tokenizers" / "ssl")
    ref = tmp_path / "me.wav"
    sf.write(ref, 0.1 * rng.normal(size=16000 // 5).astype(np.float32), 16000)  # 0.2 s: 10 frames, tiled to P
    synth = PitchSynthesizer(codec)
    sing(write_song(tmp_path / "s.musicxml"), None, None, recipe_dir=recipe, reference_wav=ref, config=CONFIG,
         synthesizer=synth)
    prompt = synth.calls[0]["prompt"]
    assert prompt.shape == (P, 9) and prompt.dtype == np.int32
    audio = sf.read(ref, dtype="float32")[0]
    n = min(len(codec.encode(audio)), len(ssl.encode(audio)))
    np.testing.assert_array_equal(prompt[:n, 0], ssl.encode(audio)[:n])  # column 0: SSL ids
    np.testing.assert_array_equal(prompt[:n, 1:], codec.encode(audio)[:n])  # columns 1..8: codec ids
    np.testing.assert_array_equal(prompt[n:2 * n], prompt[:n])  # tiled
    assert synth.calls[0]["prompt_audio"] is not None


def test_unknown_singer_and_out_of_range_notes_fail_before_synthesis(recipe, tmp_path):
    synth = PitchSynthesizer()
    song = write_song(tmp_path / "s.musicxml")
    with pytest.raises(UnknownSingerError, match="unknown singer 'tenor'; the training data has: alto, bass"):
        sing(song, "tenor", None, recipe_dir=recipe, config=CONFIG, synthesizer=synth)
    # The training scores span MIDI 55..72: C4 + 18 = F#5 (78) is out of range.
    with pytest.raises(ScoreError, match="measure 1, note 1: pitch F#5 \\(78\\) after the key shift of \\+18"):
        sing(song, "alto", None, recipe_dir=recipe, key_shift=18, config=CONFIG, synthesizer=synth)
    assert synth.calls == []


def test_model_phones_come_from_the_svs_lb_token_list(tmp_path):
    token_list = tmp_path / "svs_lb.txt"
    token_list.write_text("\n".join(build_token_list({"a", "sh"}, layout="fork")) + "\n")
    assert model_phones(token_list) == {"AP", "SP", "a", "sh"}
    assert model_phones(tmp_path / "absent.txt") is None


def test_cli_reports_score_problems_and_unknown_singers(recipe, tmp_path, capsys):
    song = write_song(tmp_path / "s.musicxml")
    out = tmp_path / "out.wav"
    assert sing_main([str(song), "--singer", "tenor", "--out", str(out), "--recipe_dir", str(recipe)]) == 1
    assert "the training data has: alto, bass" in capsys.readouterr().err
    assert sing_main([str(song), "--singer", "alto", "--out", str(out), "--recipe_dir", str(recipe),
                      "--key_shift", "-12"]) == 1
    assert "2 problem(s) in the score" in capsys.readouterr().err and not out.exists()


# ---- end to end with the real parts (random weights) -----------------------------------------------
def save_untrained_recipe(recipe, tag="t", codebook_size=16, ssl_vocab=16):
    """The LM, codec, Flow2 and vocoder of run `tag` as stages 2-5 save them, with random weights of
    the tiny configs: the whole route of `sing` runs, not the quality of a trained model."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    MiniCodec(rng.normal(-40, 10, size=(8, codebook_size, 80)).astype(np.float32), MelConfig(),
              CodecConfig(codebook_size=codebook_size, griffin_lim_iters=2)).save(recipe / "dump/tokenizers/codec")
    token_list, _ = pretrained_token_list(codec_ssl_tokens(ssl_vocab, 8, codebook_size), 8)
    token_list += build_token_list(PHONEMES)  # the svs markers are in ESPnet's special block
    lm = SpeechLM(tiny_lm_config(), Vocabulary(token_list))
    lm.init_weights(0)
    save_checkpoint(lm, recipe / f"exp/lm/{tag}/best")
    flow_dir = recipe / f"exp/flow/{tag}/tiny_flow2_mel"
    flow_dir.mkdir(parents=True)
    shutil.copy(CONF / "flow/tiny_flow2_mel.yaml", flow_dir / "config.yaml")
    flow = FlowModel(load_config(flow_dir / "config.yaml", FlowConfig).model, codec_dim=80)
    torch.save({"model": flow.state_dict(), "codec_dim": 80}, flow_dir / "best.pth")
    voc_dir = recipe / f"exp/vocoder/{tag}"
    voc_dir.mkdir(parents=True)
    shutil.copy(CONF / "vocoder/tiny.yaml", voc_dir / "config.yaml")
    voc = load_config(voc_dir / "config.yaml", VocoderConfig)
    torch.save(Generator(voc.generator, voc.mel).state_dict(), voc_dir / "generator.pth")
    infer = recipe / "infer.yaml"
    infer.write_text("conditions:\n  - name: LM + Flow2 + Voc\n    flow_tag: tiny_flow2_mel\n")
    return infer


@pytest.mark.slow
def test_sing_end_to_end_with_the_real_synthesizer(recipe, tmp_path):
    infer = save_untrained_recipe(recipe)
    prompt_wav = recipe / "data/train/bass#001.wav"  # the prompt utterance's recording (Flow2 takes a mel prompt)
    sf.write(prompt_wav, np.zeros(50 * HOP, dtype=np.float32), 16000)
    (recipe / "data/train/wav.scp").write_text(f"bass#001 {prompt_wav}\n")
    config = SingConfig(infer_config=str(infer), max_phrase_seconds=1.5)
    out = tmp_path / "song.wav"
    sing(write_song(tmp_path / "s.musicxml"), "bass", out, recipe_dir=recipe, tag="t", tempo_scale=2.0,
         flow_steps=2, config=config)
    audio, sr = sf.read(out, dtype="float32")
    assert sr == 16000 and len(audio) == 100 * HOP  # the 4 s score sung twice as fast, two phrases joined
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0


# ---- the editors' formats and --write_ds ------------------------------------------------------------
def test_every_editor_format_sings_the_same_song(recipe, tmp_path):
    """The phrase of test_sing_formats as MusicXML, USTX, UST and .ds: the same phrases synthesized, the same song."""
    songs, calls = [], []
    for write in (phrase_musicxml, phrase_ustx, phrase_ust, phrase_ds):
        synth = PitchSynthesizer()
        songs.append(sing(write(tmp_path / f"phrase.{write.__name__[7:]}"), "alto", None, recipe_dir=recipe,
                          config=CONFIG, synthesizer=synth))
        calls.append([c["phones"] for c in synth.calls])
    assert len(songs[0]) == PHRASE_SECONDS * 50 * HOP and len(calls[0]) == 2  # cut in the rest
    for song, phrases in zip(songs[1:], calls[1:]):
        np.testing.assert_array_equal(song, songs[0])
        assert phrases == calls[0]


class SineSynthesizer(PitchSynthesizer):
    """Each frame sounds a sine at its MIDI pitch (silence on rests): audio with a known F0."""

    def synthesize(self, phones, prompt, *args, **kwargs):
        super().synthesize(phones, prompt, *args, **kwargs)
        _, midi = phones_to_frames(phones)
        hz = np.repeat(np.where(midi > 0, 440.0 * 2 ** ((midi - 69) / 12), 0.0), HOP)
        return (0.3 * np.sin(2 * np.pi * np.cumsum(hz) / 16000)).astype(np.float32)


def test_write_ds_holds_what_was_sung_and_its_f0(recipe, tmp_path):
    score_path = phrase_ustx(tmp_path / "phrase.ustx")
    ds = tmp_path / "sung.ds"
    sing(score_path, "alto", None, recipe_dir=recipe, key_shift=2, config=CONFIG, synthesizer=SineSynthesizer(),
         write_ds=ds)
    sentences = json.loads(ds.read_text(encoding="utf-8"))
    assert len(sentences) == 2  # one per synthesized phrase
    # Read back, it is the score that was sung (key shift included): the same frames.
    sung = read_score(score_path, key_shift=2)
    again = read_score(ds)
    assert phones_to_frames(again["phones"])[0] == phones_to_frames(sung["phones"])[0]
    assert (phones_to_frames(again["phones"])[1] == phones_to_frames(sung["phones"])[1]).all()
    # Its F0 is the sung audio's: in the middle of every note, the note's frequency; unvoiced in rests.
    checked = 0
    for s in sentences:
        step, f0 = float(s["f0_timestep"]), np.array(s["f0_seq"].split(), float)
        for n in sung["notes"]:  # the part of the note in this sentence, less 0.1 s at each end
            a = max(0, round((n["start"] - s["offset"]) / step)) + 20
            b = min(len(f0), round((n["end"] - s["offset"]) / step)) - 20
            if b - a < 10:  # less than 50 ms left
                continue
            expected = 440.0 * 2 ** ((n["midi"] - 69) / 12) if n["midi"] else 0.0
            np.testing.assert_allclose(f0[a:b], expected, rtol=0.01)
            checked += 1
    assert checked == 6  # 我, 爱, the rest (its part after the cut at 1.22 s), 你, its melisma, 啊


def test_cli_chooses_a_voice_part_and_writes_no_ds_for_a_bad_score(recipe, tmp_path, capsys):
    song = phrase_ustx(tmp_path / "phrase.ustx")
    ds = tmp_path / "sung.ds"
    args = [str(song), "--singer", "alto", "--out", str(tmp_path / "out.wav"), "--recipe_dir", str(recipe),
            "--write_ds", str(ds)]
    assert sing_main([*args, "--part", "2"]) == 1
    assert "no voice part 2; the project has 1: part 1 (vocal, track 1)" in capsys.readouterr().err
    assert sing_main([*args, "--key_shift", "12"]) == 1  # out of the training range
    assert "problem(s) in the score" in capsys.readouterr().err
    assert not ds.exists() and not (tmp_path / "out.wav").exists()


@pytest.mark.slow
def test_cli_sings_a_ustx_end_to_end_and_writes_what_it_sang(recipe, tmp_path):
    infer = save_untrained_recipe(recipe)
    prompt_wav = recipe / "data/train/bass#001.wav"
    sf.write(prompt_wav, np.zeros(50 * HOP, dtype=np.float32), 16000)
    (recipe / "data/train/wav.scp").write_text(f"bass#001 {prompt_wav}\n")
    config = tmp_path / "sing.yaml"
    config.write_text(f"infer_config: {infer}\nmax_phrase_seconds: 1.5\n")
    song, out, ds = phrase_ustx(tmp_path / "phrase.ustx"), tmp_path / "song.wav", tmp_path / "sung.ds"
    assert sing_main([str(song), "--part", "1", "--singer", "bass", "--out", str(out), "--recipe_dir", str(recipe),
                      "--tag", "t", "--config", str(config), "--flow_steps", "2", "--tempo_scale", "2",
                      "--write_ds", str(ds)]) == 0
    audio, sr = sf.read(out, dtype="float32")
    assert sr == 16000 and len(audio) == PHRASE_SECONDS / 2 * 50 * HOP and np.isfinite(audio).all()
    sung, again = read_score(song, tempo_scale=2.0), read_score(ds)
    assert phones_to_frames(again["phones"])[0] == phones_to_frames(sung["phones"])[0]
    sentences = json.loads(ds.read_text(encoding="utf-8"))
    assert sum(len(s["f0_seq"].split()) for s in sentences) == round(PHRASE_SECONDS / 2 / 0.005)
