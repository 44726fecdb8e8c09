#!/usr/bin/env bash
# Reproduce the mini model zoo (local/mini_zoo/models/): the pretrained parts that the paper's recipe
# downloads (ESPnet-Codec, XEUS k-means, OpusLM, a HiFi-GAN, a recogniser), made small and pretrained
# on synthetic corpora that share no song, text or voice with the mini corpus. `./run.sh` on mini
# then tokenizes with them and fine-tunes them, as the paper does with the real ones.
#
#   local/mini_zoo/run.sh                          # everything, into local/mini_zoo/models/
#   local/mini_zoo/run.sh --stage 4 --stop_stage 4 # one stage (each one resumes where it stopped)
#   test/test_mini_zoo.py runs it on toy corpora for a few steps (CI never re-runs the pretraining).
#
# Stages:
#   1 corpora: zoo singing (conf/zoo_corpus.yaml, 16 voices), zoo speech (conf/zoo_speech.yaml,
#     spoken-style pitch, 24 voices, 2-5 s), short zoo speech (conf/zoo_speech.yaml with
#     speech_short_overrides: the same voices, 0.6-1.5 s) and the recogniser's singing corpus (the zoo singing voices on many more
#     songs: asr_corpus_overrides), each prepared like ACE-Opencpop (svslm.bin.prepare_data)
#   2 tokenizers: the mini codec and SSL k-means fitted on the zoo singing audio; both speech corpora
#     tokenized with them (svs_lb, codec_ssl, prompts)
#   3 SLM pretraining on the speech corpus: a random LM in ESPnet-SpeechLM format (svs_lb added by
#     the vocabulary extension), trained on speech with the svs template (conf/slm.yaml)
#   4 SLM pretraining on the short speech, slm_short_epochs from stage 3's best/: the mini corpus
#     sings short phrases, and the mini SLM reads its score only at lengths it was trained on
#   5 vocoder pretraining over the zoo singing voices (conf/vocoder.yaml)
#   6 phoneme recogniser for PER, trained on its singing corpus (conf/asr.yaml)
#   7 export into models_dir: tokenizers/, slm/ (the short-speech run's), vocoder/, asr/ (weights in fp16)
# Logs: <work_dir>/logs/.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}:${BASH_LINENO[0]}) $*" >&2; }

zoo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${zoo}/../.." && pwd)"
. "${root}/path.sh"

stage=1                                        # first stage to run
stop_stage=7                                   # last stage to run
work_dir=exp/mini_zoo                          # corpora, data, dumps and training runs
models_dir="${zoo}/models"                     # where the exported zoo goes (committed)
corpus_config="${zoo}/conf/zoo_corpus.yaml"    # the zoo singing corpus: seed, songs, 16 voices
speech_config="${zoo}/conf/zoo_speech.yaml"    # the zoo speech corpus: spoken pitch, 24 voices
tokenize_config="${root}/conf/tokenize/tiny.yaml"  # the mini recipe's: its codec/ssl sections must match the zoo's
slm_config="${zoo}/conf/slm.yaml"              # the mini SLM's geometry and pretraining
vocoder_config="${zoo}/conf/vocoder.yaml"      # conf/vocoder/tiny.yaml's geometry
voc_steps=                                     # vocoder pretraining steps; empty = the config's
nj=2                                           # processes for corpus preparation and tokenization
corpus_overrides=                              # e.g. "train_songs=1" for a smoke run (every corpus)
# The short speech of the SLM's second pretraining (stage 4): conf/zoo_speech.yaml's voices and
# generator on 2500 other texts (6001..), 2 utterances of 0.6-1.5 s a text, one voice a text (4968
# train, 32 dev, 8 test utterances), as short as the mini corpus's phrases (bench/results/recipe.md).
# Every Opencpop phone is already in the SLM's vocabulary, so coverage is not asked for.
speech_short_overrides="seed=6789 first_song=6001 train_songs=2500 test_songs=8 phrases_per_train_song=2 singers_per_song=1 dev_utts=32 min_phrase_seconds=0.6 max_phrase_seconds=1.5 full_coverage=false"
# The recogniser's corpus: conf/zoo_corpus.yaml's voices and generator on 256 songs (5001..), each
# sung by 2 of the voices, in short phrases of dense notes like the mini corpus's: 1536 phrases where
# the zoo singing corpus has 32, so that the recogniser learns phones rather than the lyrics of few
# songs, at the lengths it scores (bench/results/recipe.md).
asr_corpus_overrides="seed=5151 first_song=5001 train_songs=256 singers_per_song=2 test_songs=4 dev_utts=16 phrases_per_train_song=6 phrases_per_test_song=3 min_phrase_seconds=1.0 max_phrase_seconds=1.8 note_value_scale=0.4"
slm_args=                                      # extra arguments of svslm.bin.lm_train (stages 3 and 4), e.g. "--override train.max_epochs=1"
# Epochs of the second pretraining (stage 4, on short speech, from stage 3's best/; this wins over a
# max_epochs in slm_args). Its cosine schedule ends there; validation loss was best at epoch 3 of 5.
slm_short_epochs=5
vocoder_args=                                  # extra arguments of svslm.bin.vocoder_train, e.g. "--override train.batch_size=2"
asr_config="${zoo}/conf/asr.yaml"              # the recogniser behind PER: 4 convolutions, note splicing
asr_args=                                      # extra arguments of svslm.bin.asr_train, e.g. "--override train.epochs=2"

. "${root}/utils/parse_options.sh"

mkdir -p "${work_dir}/logs"
run_step() {
    local name=$1; shift
    log "  $* > ${work_dir}/logs/${name}.log"
    "$@" > "${work_dir}/logs/${name}.log" 2>&1 || {
        tail -c 100000 "${work_dir}/logs/${name}.log" | tr '\r' '\n' | grep -v '%|' | tail -n 30 >&2; exit 1; }
}
singing=${work_dir}/singing; speech=${work_dir}/speech; speech_short=${work_dir}/speech_short
asr_corpus=${work_dir}/asr_corpus

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    for corpus in singing speech speech_short asr_corpus; do
        case ${corpus} in
            singing) config=${corpus_config}; overrides= ;;
            speech) config=${speech_config}; overrides= ;;
            speech_short) config=${speech_config}; overrides=${speech_short_overrides} ;;
            asr_corpus) config=${corpus_config}; overrides=${asr_corpus_overrides} ;;
        esac
        overrides="${overrides}${overrides:+${corpus_overrides:+ }}${corpus_overrides}"
        log "===== Stage 1: zoo ${corpus} corpus (${config}${overrides:+ with ${overrides}}) -> ${work_dir}/${corpus}/{corpus,data} ====="
        # shellcheck disable=SC2086 # overrides is a list of KEY=VALUE words
        run_step stage1_${corpus}_corpus python "${root}/local/mini/make_corpus.py" --config "${config}" --nj ${nj} \
            --out_dir "${work_dir}/${corpus}/corpus" ${overrides:+--override ${overrides}}
        run_step stage1_${corpus}_prepare python -m svslm.bin.prepare_data --format ace_opencpop \
            --db_root "${work_dir}/${corpus}/corpus" --data_dir "${work_dir}/${corpus}/data" --fs 16000 --nj ${nj} \
            --skip_bad false --config "${root}/conf/data/prepare.yaml"
    done
fi

if [ ${stage} -le 2 ] && [ ${stop_stage} -ge 2 ]; then
    log "===== Stage 2: codec + SSL k-means fitted on the zoo singing audio; both speech corpora tokenized with them ====="
    run_step stage2_fit_tokenizers python -m svslm.bin.tokenize --config "${tokenize_config}" \
        --data_dir ${singing}/data --dump_dir ${singing}/dump --nj ${nj} --part prepare
    for corpus in speech speech_short; do
        run_step stage2_tokenize_${corpus} python -m svslm.bin.tokenize --config "${tokenize_config}" \
            --data_dir ${work_dir}/${corpus}/data --dump_dir ${work_dir}/${corpus}/dump --nj ${nj} \
            --pretrained_tokenizers ${singing}/dump/tokenizers
    done
fi

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    log "===== Stage 3: SLM pretraining on speech (${slm_config}) -> ${work_dir}/slm ====="
    run_step stage3_random_init python -m svslm.bin.lm_make_pretrained --config "${slm_config}" \
        --token_list ${speech}/dump/token_list/codec_ssl.txt --out_dir ${work_dir}/slm_random
    run_step stage3_extend_vocab python -m svslm.bin.extend_vocab --config "${slm_config}" \
        --pretrained_dir ${work_dir}/slm_random --token_list ${speech}/dump/token_list/svs_lb.txt \
        --out_dir ${work_dir}/slm_init
    run_step stage3_slm_train torchrun --standalone --nproc_per_node 1 --module svslm.bin.lm_train \
        --config "${slm_config}" --init_dir ${work_dir}/slm_init \
        --train_json ${speech}/dump/train/data.json --valid_json ${speech}/dump/dev/data.json \
        --exp_dir ${work_dir}/slm ${slm_args}
fi

if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ]; then
    log "===== Stage 4: SLM pretraining on short speech (${slm_short_epochs} epochs from ${work_dir}/slm/best) -> ${work_dir}/slm_short ====="
    run_step stage4_slm_short_train torchrun --standalone --nproc_per_node 1 --module svslm.bin.lm_train \
        --config "${slm_config}" --init_dir ${work_dir}/slm/best \
        --train_json ${speech_short}/dump/train/data.json --valid_json ${speech_short}/dump/dev/data.json \
        --exp_dir ${work_dir}/slm_short ${slm_args} --override train.max_epochs=${slm_short_epochs}
fi

if [ ${stage} -le 5 ] && [ ${stop_stage} -ge 5 ]; then
    log "===== Stage 5: vocoder pretraining (${voc_steps:-config} steps) -> ${work_dir}/vocoder ====="
    run_step stage5_vocoder python -m svslm.bin.vocoder_train --config "${vocoder_config}" \
        --data_dir ${singing}/data --exp_dir "${work_dir}/vocoder" \
        ${voc_steps:+--override train.max_steps=${voc_steps}} ${vocoder_args}
fi

if [ ${stage} -le 6 ] && [ ${stop_stage} -ge 6 ]; then
    log "===== Stage 6: phoneme recogniser (PER) pretraining on ${asr_corpus}/data -> ${work_dir}/asr ====="
    run_step stage6_asr python -m svslm.bin.asr_train --config "${asr_config}" \
        --data_dir ${asr_corpus}/data --exp_dir "${work_dir}/asr" ${asr_args}
fi

if [ ${stage} -le 7 ] && [ ${stop_stage} -ge 7 ]; then
    log "===== Stage 7: export -> ${models_dir} ====="
    run_step stage7_export python "${zoo}/export.py" --tokenizer_dir ${singing}/dump/tokenizers \
        --slm_dir ${work_dir}/slm_short/best --vocoder_dir "${work_dir}/vocoder" --asr_dir "${work_dir}/asr" \
        --out_dir "${models_dir}"
    log "zoo written to ${models_dir}"
fi
