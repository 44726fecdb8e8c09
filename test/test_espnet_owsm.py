"""PER's OWSM recogniser against ESPnet's Speech2Text on a tiny OWSM-like S2TTask model.

Needs ESPnet (./install.sh --espnet); run with `pytest -m espnet test`.
"""
from __future__ import annotations

import pytest
from espnet_tiny import tiny

from svslm.evaluate.per import (
    AsrBackendConfig,
    OwsmRecognizer,
    load_recognizer,
    text_to_phones,
)

# ESPnet is imported inside the tests: the main suite collects this file without ESPnet installed.
pytestmark = pytest.mark.espnet


@pytest.fixture(scope="module")
def owsm(tmp_path_factory):
    return tiny.build_owsm(tmp_path_factory.mktemp("owsm"), seed=0)


def test_the_transcript_is_espnets_without_tags(owsm):
    from espnet2.bin.s2t_inference import Speech2Text

    wav = tiny.synthetic_audio(1.5, seed=8)
    espnet = Speech2Text(s2t_train_config=str(owsm / "config.yaml"), s2t_model_file=str(owsm / "model.pth"),
                         device="cpu", lang_sym="<zho>", task_sym="<asr>", beam_size=5)
    best = espnet(wav)[0]
    assert best[0].startswith("<zho><asr><notimestamps>")  # the tagged text the old code scored
    recognizer = load_recognizer(AsrBackendConfig(kind="owsm", model_dir=str(owsm), language="zh"))
    assert isinstance(recognizer, OwsmRecognizer)
    text = recognizer.transcribe(wav)
    assert text == best[3] and text and "<" not in text
    assert recognizer.recognize(wav) == text_to_phones(text) and recognizer.recognize(wav)

