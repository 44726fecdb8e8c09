#!/usr/bin/env bash
# Reproduce the mini model zoo (local/mini_zoo/models/): the pretrained parts that the paper's recipe
# downloads, made small, pretrained on a synthetic corpus that shares no song and no singer with the
# mini corpus (conf/zoo_corpus.yaml). `./run.sh` on mini then fine-tunes them.
#
#   local/mini_zoo/run.sh                          # everything, into local/mini_zoo/models/
#   local/mini_zoo/run.sh --voc_steps 20 --work_dir /tmp/z --models_dir /tmp/z/models   # a smoke run
#
# Stages: 1 zoo corpus + data preparation; 2 vocoder pretraining over the zoo's 16 voices;
# 3 export (generator + discriminators in fp16) into models_dir; 4 phoneme recogniser (PER) pretraining;
# 5 its export (fp16) into models_dir/asr. Logs: <work_dir>/logs/.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}:${BASH_LINENO[0]}) $*" >&2; }

zoo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${zoo}/../.." && pwd)"
. "${root}/path.sh"

stage=1                                        # first stage to run
stop_stage=5                                   # last stage to run
work_dir=exp/mini_zoo                          # corpus, data and training runs
models_dir="${zoo}/models"                     # where the exported zoo goes (committed)
corpus_config="${zoo}/conf/zoo_corpus.yaml"    # the zoo corpus: seed, songs, 16 voices
vocoder_config="${zoo}/conf/vocoder.yaml"     # conf/vocoder/tiny.yaml's geometry, 700 steps
voc_steps=                                     # vocoder pretraining steps; empty = the config's
nj=2                                           # processes for corpus preparation
corpus_overrides=                              # e.g. "train_songs=1" for a smoke run
vocoder_args=                                  # extra arguments of svslm.bin.vocoder_train, e.g. "--override train.batch_size=2"
# ---- phoneme recogniser (stages 4-5) ----
asr_config="${zoo}/conf/asr.yaml"              # the recogniser behind PER: 4 convolutions, note splicing
asr_args=                                      # extra arguments of svslm.bin.asr_train, e.g. "--override train.epochs=2"
# ---- end phoneme recogniser ----

. "${root}/utils/parse_options.sh"

mkdir -p "${work_dir}/logs"
run_step() {
    local name=$1; shift
    log "  $* > ${work_dir}/logs/${name}.log"
    "$@" > "${work_dir}/logs/${name}.log" 2>&1 || { tail -n 30 "${work_dir}/logs/${name}.log" >&2; exit 1; }
}

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "===== Stage 1: zoo corpus -> ${work_dir}/corpus, ${work_dir}/data ====="
    run_step stage1_corpus python "${root}/local/mini/make_corpus.py" --config "${corpus_config}" \
        --out_dir "${work_dir}/corpus" ${corpus_overrides:+--override ${corpus_overrides}}
    run_step stage1_prepare python -m svslm.bin.prepare_data --format ace_opencpop \
        --db_root "${work_dir}/corpus" --data_dir "${work_dir}/data" --fs 16000 --nj ${nj} \
        --skip_bad false --config "${root}/conf/data/prepare.yaml"
fi

if [ ${stage} -le 2 ] && [ ${stop_stage} -ge 2 ]; then
    log "===== Stage 2: vocoder pretraining (${voc_steps:-config} steps) -> ${work_dir}/vocoder ====="
    run_step stage2_vocoder python -m svslm.bin.vocoder_train --config "${vocoder_config}" \
        --data_dir "${work_dir}/data" --exp_dir "${work_dir}/vocoder" \
        ${voc_steps:+--override train.max_steps=${voc_steps}} ${vocoder_args}
fi

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    log "===== Stage 3: export -> ${models_dir} ====="
    run_step stage3_export python "${zoo}/export.py" --vocoder_dir "${work_dir}/vocoder" \
        --out_dir "${models_dir}/vocoder"
fi
# ---- phoneme recogniser (stages 4-5) ----
if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ]; then
    log "===== Stage 4: phoneme recogniser (PER) pretraining -> ${work_dir}/asr ====="
    run_step stage4_asr python -m svslm.bin.asr_train --config "${asr_config}" \
        --data_dir "${work_dir}/data" --exp_dir "${work_dir}/asr" ${asr_args}
fi

if [ ${stage} -le 5 ] && [ ${stop_stage} -ge 5 ]; then
    log "===== Stage 5: recogniser export -> ${models_dir}/asr ====="
    run_step stage5_asr_export python "${zoo}/export.py" --asr_dir "${work_dir}/asr" --out_dir "${models_dir}/asr"
fi
# ---- end phoneme recogniser ----
log "zoo written to ${models_dir}"
