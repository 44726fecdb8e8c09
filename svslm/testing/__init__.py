"""Test doubles and generated data for `test/` and `bench/`; nothing in the package imports them.

- `svslm.testing.lm`: tiny stage 2 outputs (dump/ with svs_lb, codec_ssl, prompts) and tiny LMs;
- `svslm.testing.infer`: stand-in codec, flows and vocoder, and a tiny recipe directory for stage 6;
- `svslm.testing.evaluate`: tones with a known F0 contour and a learnable phone corpus, for metrics;
- `svslm.testing.corpus`: a synthetic corpus (local/mini) through stage 1, as run.sh prepares it.
"""
