"""Make a small randomly initialised "pretrained" LM in ESPnet-SpeechLM format (mini recipe).

The real recipe starts from OpusLM_1.7B; on the mini corpus, which cannot fetch it, this writes a
checkpoint with ESPnet's conventions (svslm.lm.pretrained) at the geometry of the YAML's `model`
section, so stage 2's vocabulary extension and stage 3's loading run the code the real model does.

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
from svslm.lm.pretrained import make_pretrained
from svslm.utils.config import load_config
from svslm.utils.logging import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="stage 3 YAML (its `model` section is used)")
    parser.add_argument("--token_list", required=True, help="codec_ssl token list, one token per line")
    parser.add_argument("--out_dir", required=True, help="output checkpoint directory")
    add_override(parser)
    args = parser.parse_args(argv)
    log = setup_logging()

    conf = load_config(args.config, LMRecipeConfig, args.override)
    if conf.model is None:
        parser.error(f"{args.config} has no `model` section: the made-up LM needs a geometry")
    path = Path(args.token_list)
    if not path.is_file():
        parser.error(f"token list not found: {path}")
    codec_ssl = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    model = make_pretrained(conf.model, codec_ssl, conf.n_text_tokens, conf.init_seed)
    save_checkpoint(model, args.out_dir)
    vocab = model.vocab
    log.info("wrote %s: %d tokens (%d SSL, %d x %d codec), %.2fM parameters", args.out_dir, len(vocab),
             vocab.ssl_vocab, vocab.n_codebooks, vocab.codebook_size, sum(p.numel() for p in model.parameters()) / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
