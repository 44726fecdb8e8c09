#!/usr/bin/env bash
# Stage 1 on ACE-Opencpop as published on the hub (espnet/ace-opencpop-segments: a directory of
# parquet shards data/{train,validation,test}-*.parquet, e.g. from
# `huggingface-cli download espnet/ace-opencpop-segments --repo-type dataset --local-dir DB`).
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}:${BASH_LINENO[0]}) $*" >&2; }

root="$(cd "$(dirname "$0")/../.." && pwd)"
. "${root}/path.sh"   # the venv and PYTHONPATH, also when this script is run on its own
db_root=                    # the downloaded dataset directory
data_dir=data               # output: <data_dir>/{train,dev,test}
fs=16000                    # sample rate of the prepared audio
nj=2                        # parallel processes
skip_bad=false              # leave out (and list) bad utterances instead of failing
prepare_config="${root}/conf/data/prepare.yaml"   # stage-1 tolerances and dev size

. "${root}/utils/parse_options.sh"
[ -n "${db_root}" ] || { log "--db_root is required"; exit 1; }

log "data preparation: ${db_root} -> ${data_dir}/"
python -m svslm.bin.prepare_data --format ace_opencpop --db_root "${db_root}" --data_dir "${data_dir}" \
    --fs "${fs}" --nj "${nj}" --skip_bad "${skip_bad}" --config "${prepare_config}"
