#!/usr/bin/env bash
# Slurm job arrays: see utils/run_cluster.py (options from conf/slurm.conf).
exec python3 "$(dirname "$0")/run_cluster.py" --backend slurm "$@"
