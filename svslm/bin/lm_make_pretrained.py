"""Make a small randomly initialised "pretrained" LM in ESPnet-SpeechLM format (mini recipe).

The real recipe starts from OpusLM_1.7B; on the mini corpus, which cannot fetch it, this writes a
checkpoint of the same format and vocabulary layout (ESPnet's reserved special-token slots, the
codec_ssl tokens, a few text tokens) at the geometry of the YAML's `model` section, so stage 2's
vocabulary extension and stage 3's loading run the same code as for the real model.

    python -m svslm.bin.lm_make_pretrained --config conf/lm/tiny.yaml \
        --token_list dump/token_list/codec_ssl.txt --out_dir exp/pretrained_lm/mini
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from svslm.bin.args import add_override
from svslm.lm.checkpoint import save_checkpoint
from svslm.lm.config import LMRecipeConfig
from svslm.lm.model import SpeechLM
from svslm.lm.vocab import Vocabulary
from svslm.utils.config import load_config
from svslm.utils.logging import setup_logging

# ESPnet-SpeechLM's special-token block (espnet2/speechlm/definitions.py): 256 slots, general
# specials from 0, modality markers from 32, task markers from 64, the rest reserved. Only what a
# TTS-pretrained model would know is listed; svs markers come later from the vocabulary extension.
GENERAL_SPECIALS = ["<pad>", "<unk>", "<blank>", "<space>", "<continuous_placeholder>", "<sos/eos>",
                    "<local_sos/eos>", "<unkown_task_identifer>", "<system_prompt>", "<user_input>",
                    "<assistant_output>", "<eou>"]
MODALITIES = ["codec", "ssl", "codec_ssl", "text_bpe", "g2p", "spk"]
TASKS = ["tts", "codec_ssl_tts", "asr", "codec_ssl_asr", "audiolm", "codec_ssl_audiolm", "textlm"]


def special_tokens() -> list[str]:
    tokens: list[str] = []

    def fill(until: int) -> None:
        tokens.extend(f"<unused_token_{i}>" for i in range(len(tokens), until))

    tokens += GENERAL_SPECIALS
    fill(32)
    tokens += [f"<{m}_start/end>" for m in MODALITIES]
    fill(64)
    tokens += [f"<{t}_task>" for t in TASKS]
    fill(256)
    return tokens


def pretrained_token_list(codec_ssl_tokens: list[str], n_text_tokens: int) -> tuple[list[str], dict[str, int]]:
    """Specials + codec_ssl tokens + text tokens, and the text_bpe entry of token_bias."""
    specials = special_tokens()
    text = [f"<text_bpe_{i}>" for i in range(n_text_tokens)]
    token_list = specials + codec_ssl_tokens + text
    return token_list, {"text_bpe": len(specials) + len(codec_ssl_tokens)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="stage 3 YAML (its `model` section is used)")
    parser.add_argument("--token_list", required=True, help="codec_ssl token list, one token per line")
    parser.add_argument("--out_dir", required=True, help="output checkpoint directory")
    add_override(parser)
    args = parser.parse_args(argv)
    log = setup_logging()

    conf = load_config(args.config, LMRecipeConfig, args.override)
    path = Path(args.token_list)
    if not path.is_file():
        parser.error(f"token list not found: {path}")
    codec_ssl = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    token_list, text_bias = pretrained_token_list(codec_ssl, conf.n_text_tokens)
    vocab = Vocabulary(token_list, source=str(path))
    model = SpeechLM(conf.model, vocab)
    model.init_weights(conf.init_seed)
    model.token_bias.update(text_bias)
    save_checkpoint(model, args.out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("wrote %s: %d tokens (%d SSL, %d x %d codec), %.2fM parameters",
             args.out_dir, len(vocab), vocab.ssl_vocab, vocab.nq - 1, vocab.codebook_size, n_params / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
