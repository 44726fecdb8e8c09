"""Stage 6 inference: the paper's Table 2 conditions (conditions.py), their routes through the
trained parts (pipeline.py: `Synthesizer`), and the batched, resumable run over a split (run.py)."""
