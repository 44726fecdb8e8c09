#!/usr/bin/env bash
# Grid Engine (qsub) job arrays: see utils/run_cluster.py (options from conf/queue.conf).
exec python3 "$(dirname "$0")/run_cluster.py" --backend sge "$@"
