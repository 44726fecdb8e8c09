"""The recipe's stage 2 (through run.sh) on the mini corpus with the espnet codec and xeus SSL
back ends, on tiny models written by local/espnet_tiny_models.py; every token checked against
ESPnet's own inference.

Needs ESPnet (./install.sh --espnet); run with `pytest -m espnet test`.
"""
from __future__ import annotations

import os
import subprocess
import sys

import joblib
import kaldiio
import numpy as np
import pytest
import torch
import yaml
from espnet_tiny import ROOT, tiny

from svslm.utils.audio import load_wav
from svslm.utils.fileio import read_kaldi_map

# ESPnet is imported inside the test: the main suite collects this file without ESPnet installed.
pytestmark = pytest.mark.espnet


def test_stage_2_with_the_espnet_backends(tmp_path, monkeypatch):
    from espnet2.bin.gan_codec_inference import AudioCoding
    from espnet2.tasks.ssl import SSLTask

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    models = tmp_path / "models"
    proc = subprocess.run([sys.executable, str(ROOT / "local/espnet_tiny_models.py"), "--out_dir", str(models)],
                          check=False, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = models / "tokenize.yaml"
    assert proc.stdout.strip().endswith(str(config))
    cmd = [str(ROOT / "run.sh"), "--stage", "1", "--stop_stage", "2", "--nj", "2",
           "--local_data_opts", f"--corpus_config {ROOT}/test/conf/mini_smoke_corpus.yaml",
           "--tokenize_config", str(config)]
    work = tmp_path / "recipe"
    work.mkdir()
    proc = subprocess.run(cmd, check=False, cwd=work, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    monkeypatch.chdir(work)  # wav.scp and the scp files hold paths relative to the recipe

    saved = yaml.safe_load((work / "dump/tokenizers/codec/config.yaml").read_text())
    assert saved["backend"] == "espnet"
    codec = AudioCoding(str(models / "codec/config.yaml"), str(models / "codec/1epoch.pth"))
    ssl_model, _ = SSLTask.build_model_from_file(str(models / "ssl/config.yaml"), str(models / "ssl/1epoch.pth"))
    ssl_model.eval()
    km = joblib.load(models / f"ssl/km_{tiny.KMEANS_CLUSTERS}.mdl")
    token_list = (work / "dump/token_list/codec_ssl.txt").read_text().split()
    assert len(token_list) == tiny.KMEANS_CLUSTERS + 8 * 1024

    n_utts = 0
    for split in ("train", "dev", "test"):
        wavs = read_kaldi_map(work / f"data/{split}/wav.scp")
        scp = read_kaldi_map(work / f"dump/{split}/codec_ssl.scp")
        assert set(scp) == set(wavs) and not (work / f"dump/{split}/bad_utts").exists()
        for utt, path in sorted(wavs.items()):
            wav = load_wav(path, sample_rate=16000)
            tokens = kaldiio.load_mat(scp[utt])  # [T, 9]: SSL id, then 8 codec codes
            n_frames = len(wav) // 320
            assert tokens.shape == (n_frames, 9), utt
            with torch.no_grad():
                codes = codec(torch.from_numpy(wav), encode_only=True)["codes"][:8, 0].T[:n_frames].numpy()
                padded = torch.from_numpy(np.pad(wav, (0, 80)))[None]
                final, _, _ = ssl_model.inference_encode(padded, torch.tensor([padded.shape[1]]),
                                                         use_mask=False, use_final_output=False)
            np.testing.assert_array_equal(tokens[:, 1:], codes, err_msg=utt)
            np.testing.assert_array_equal(tokens[:, 0], km.predict(final[0].numpy()), err_msg=utt)
            n_utts += 1
    assert n_utts >= 10
