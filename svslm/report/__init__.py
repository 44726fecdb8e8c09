"""Stage 6 reporting: RESULTS.md in the paper's table layout (results_md.py) with published rows
(published.py), and the static HTML page with audio and figures (html.py, plots.py)."""
