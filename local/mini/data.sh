#!/usr/bin/env bash
# Stage 1 on the embedded mini corpus: generate it into --db_root (unless already complete),
# then prepare data/ with the real ACE-Opencpop parser, as for the published corpus.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}:${BASH_LINENO[0]}) $*" >&2; }

root="$(cd "$(dirname "$0")/../.." && pwd)"
. "${root}/path.sh"   # the venv and PYTHONPATH, also when this script is run on its own
db_root=downloads/mini      # where the mini corpus is generated
data_dir=data               # output: <data_dir>/{train,dev,test}
fs=16000                    # sample rate of the prepared audio
nj=2                        # parallel processes
skip_bad=false              # leave out (and list) bad utterances instead of failing
corpus_config="${root}/conf/data/mini_corpus.yaml"   # generator settings (singers, songs, seed)
prepare_config="${root}/conf/data/prepare.yaml"      # stage-1 tolerances

. "${root}/utils/parse_options.sh"

log "mini corpus -> ${db_root} (${corpus_config})"
python "${root}/local/mini/make_corpus.py" --config "${corpus_config}" --out_dir "${db_root}" --nj "${nj}"
log "data preparation: ${db_root} -> ${data_dir}/"
python -m svslm.bin.prepare_data --format ace_opencpop --db_root "${db_root}" --data_dir "${data_dir}" \
    --fs "${fs}" --nj "${nj}" --skip_bad "${skip_bad}" --config "${prepare_config}"
