#!/usr/bin/env bash
# svslm recipe driver: singing voice synthesis with a speech LM, flow matching and HiFi-GAN.
#
#   ./run.sh                                  # all six stages on the embedded mini corpus (CPU)
#   ./run.sh --stage 3 --stop_stage 3         # one stage
#   ./run.sh --corpus ace_opencpop --db_root /data/ace-opencpop --gpus 8
#   ./run.sh --corpus ace_opencpop --gpus 8 --num_jobs 32 --cmd_backend slurm   # README: clusters
#
# Each stage calls one `python -m svslm.bin.<verb>` with explicit paths; its log is
# exp/logs/<tag>/stage<N>_<name>.log. Outputs land in data/, dump/ and exp/ under the current directory.
# Devices: every stage's config says `device: auto` (CUDA when present; svslm/utils/device.py).
set -euo pipefail

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (run.sh:${BASH_LINENO[0]}) $*" >&2; }

SVSLM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "${SVSLM_ROOT}/path.sh"
[ -f ./db.sh ] && . ./db.sh || . "${SVSLM_ROOT}/db.sh"

# ---- options (each settable as --name value) ----
stage=1                 # first stage to run
stop_stage=6            # last stage to run
corpus=mini             # mini | ace_opencpop | opencpop
db_root=                # corpus on disk; default from db.sh
nj=2                    # parallel jobs for data, tokenization, inference, scoring and the report's figures; on CPU also the vocoder's data-parallel processes
gpus=0                  # GPUs per node for stages 3-5 (0 = CPU: independent steps side by side); stages 4-5 run under torchrun
skip_bad=false          # stage 1: skip (and list) bad utterances instead of failing
fs=16000                # sample rate of the prepared audio (the codec's)
pretrained_lm=          # ESPnet-SpeechLM checkpoint: dir with config.yaml + weights, or a weights file; mini default: the zoo's (local/mini_zoo/models/slm) unless --tokenize_config is given; "none" on mini = random init (the LM from scratch; the "LM from scratch" row then reads this LM instead of training a second one)
pretrained_tokenizers=  # stage 2: codec/ and ssl/ fitted elsewhere; mini default: the zoo's (local/mini_zoo/models/tokenizers) unless --tokenize_config is given; "none" = fit them on the training split
tokenize_config=        # stage 2 YAML
lm_config=              # stage 3 YAML (model + training + deepspeed json)
decode_config=          # stage 3 decoding YAML
lm_decode_sets="train dev test"   # splits the LM decodes (the flow trains on the LM's train decodes)
flow_configs=           # stage 4 YAMLs, space separated; default: conf/flow/<tag>.yaml of each flow_tag the infer config's conditions use
vocoder_config=         # stage 5 YAML
pretrained_vocoder=     # stage 5: vocoder exp dir to fine-tune (train.init_from); mini default: the zoo's (local/mini_zoo/models/vocoder); empty or "none" = from scratch
infer_config=           # stage 6 inference YAML (its conditions also choose stage 4's flows)
conditions=             # stages 4 and 6: only these conditions (slugs such as lm_flow1_voc, space separated); default: all of infer_config
score_config=           # stage 6 scoring YAML
asr_config=             # stage 6 phoneme CTC recogniser YAML (for PER)
pretrained_asr=         # stage 6: recogniser dir for PER to use as it is; mini default: the zoo's (local/mini_zoo/models/asr); empty or "none" = train one (asr_config) on the corpus
tag=                    # name of this run under exp/ (default: the corpus)
# ---- scale-out: job arrays (cmd.sh) and multi-node launchers; README "Many GPUs and clusters" ----
num_jobs=0              # stages 2, 3 (decoding) and 6 (synthesis) as arrays of this many jobs (0 = --nj processes)
cmd_backend=local       # where the job arrays run (cmd.sh): local | slurm | queue
torchrun_opts=          # stages 4-5: torchrun's options instead of --standalone, e.g. "--nnodes 2 --node_rank 0 --rdzv_backend c10d --rdzv_endpoint host0:29500"
deepspeed_opts=         # stage 3: extra deepspeed launcher options, e.g. "--hostfile hostfile" (multi-node)
# Extra arguments passed through to one step (ESPnet's *_args convention), e.g.
# --lm_args "--override train.max_epochs=2"; every svslm.bin entry point takes --override key=value.
local_data_opts=        # stage 1: options of local/<corpus>/data.sh, e.g. "--corpus_config my.yaml"
tokenize_args=          # stage 2: python -m svslm.bin.tokenize
pretrained_args=        # stage 2 (mini): python -m svslm.bin.lm_make_pretrained
extend_vocab_args=      # stage 2: python -m svslm.bin.extend_vocab
lm_args=                # stage 3: python -m svslm.bin.lm_train
decode_args=            # stage 3: python -m svslm.bin.lm_decode
flow_args=              # stage 4: python -m svslm.bin.flow_train
vocoder_args=           # stage 5: python -m svslm.bin.vocoder_train
asr_args=               # stage 6: python -m svslm.bin.asr_train
infer_args=             # stage 6: python -m svslm.bin.infer
score_args=             # stage 6: python -m svslm.bin.score_eval
report_args=            # stage 6: python -m svslm.bin.report

. "${SVSLM_ROOT}/utils/parse_options.sh"
if [ $# -ne 0 ]; then
    log "unknown positional arguments: $*"; exit 1
fi

# ---- per-corpus defaults: tiny CPU configs for mini, the paper's for the real corpora ----
case "${corpus}" in
    mini)  # the mini model zoo (local/mini_zoo/) stands in for the downloads of the real recipe
        db_root=${db_root:-${MINI:-downloads/mini}}
        zoo="${SVSLM_ROOT}/local/mini_zoo/models"
        # The zoo's tokenizers and SLM are conf/tokenize/tiny.yaml's codec and SSL ids: another
        # tokenize config fits its own tokenizers, and its LM is a random one of conf/lm/tiny.yaml.
        if [ -z "${tokenize_config}" ]; then
            pretrained_lm=${pretrained_lm:-${zoo}/slm}
            pretrained_tokenizers=${pretrained_tokenizers:-${zoo}/tokenizers}
        fi
        pretrained_vocoder=${pretrained_vocoder:-${zoo}/vocoder}
        pretrained_asr=${pretrained_asr:-${zoo}/asr}
        # A pretrained vocoder is fine-tuned briefly; from scratch, conf/vocoder/tiny.yaml trains it long.
        [ "${pretrained_vocoder}" = none ] || vocoder_config=${vocoder_config:-${SVSLM_ROOT}/conf/vocoder/tiny_finetune.yaml}
        size=tiny ;;
    ace_opencpop)
        db_root=${db_root:-${ACE_OPENCPOP:-}}
        size=paper ;;
    opencpop)
        db_root=${db_root:-${OPENCPOP:-}}
        size=paper ;;
    *) log "unknown --corpus ${corpus} (mini | ace_opencpop | opencpop)"; exit 1 ;;
esac
if [ -z "${db_root}" ]; then
    log "set --db_root or the ${corpus^^} variable in db.sh to the corpus directory"; exit 1
fi
conf="${SVSLM_ROOT}/conf"
# A relative config path is taken from the current directory, else from the repository root, so
# `--flow_configs "conf/flow/x.yaml"` also works from egs2/<corpus>/svslm1/.
conf_path() {
    local p
    for p in "$@"; do
        if [[ "${p}" != /* && ! -e "${p}" && -e "${SVSLM_ROOT}/${p}" ]]; then p="${SVSLM_ROOT}/${p}"; fi
        [ -e "${p}" ] || { log "config not found: ${p} (relative paths: from $(pwd) or ${SVSLM_ROOT})"; exit 1; }
        echo "${p}"
    done
}
tokenize_config=$(conf_path "${tokenize_config:-${conf}/tokenize/${size}.yaml}")
lm_config=$(conf_path "${lm_config:-${conf}/lm/${size}.yaml}")
decode_config=$(conf_path "${decode_config:-${conf}/decode/${size}.yaml}")
vocoder_config=$(conf_path "${vocoder_config:-${conf}/vocoder/${size}.yaml}")
infer_config=$(conf_path "${infer_config:-${conf}/infer/${size}.yaml}")
score_config=$(conf_path "${score_config:-${conf}/score/${size}.yaml}")
asr_config=$(conf_path "${asr_config:-${conf}/asr/${size}.yaml}")
tag=${tag:-${corpus}}
[ -z "${conditions}" ] || infer_args="--conditions ${conditions} ${infer_args}"
# The selected conditions of the infer config, one "slug flow_tag" line each ("-": no flow): stage 4
# trains exactly the flows they render with; "LM from scratch + CD" among them makes stages 2-3 also
# fine-tune a random LM of the same geometry (below, after lm_exp).
plan=$(python -m svslm.bin.infer --config "${infer_config}" ${conditions:+--conditions ${conditions}} --print_plan) \
    || { log "cannot read the conditions of ${infer_config}"; exit 1; }
flow_tags=$(awk '$2 != "-" && !seen[$2]++ {print $2}' <<< "${plan}")
if [ -z "${flow_configs}" ]; then
    for t in ${flow_tags}; do flow_configs+="${conf}/flow/${t}.yaml "; done
fi
flow_configs=$(conf_path ${flow_configs})
for flow_config in ${flow_configs}; do
    t=$(basename "${flow_config}" .yaml)
    if ! grep -qx "${t}" <<< "${flow_tags}"; then
        log "flow config ${flow_config}: no selected condition of ${infer_config} renders with flow_tag ${t} (they use: ${flow_tags//$'\n'/ })"
        exit 1
    fi
done

data=data; dump=dump; exp=exp
lm_exp=${exp}/lm/${tag}; voc_exp=${exp}/vocoder/${tag}; eval_exp=${exp}/eval/${tag}
# The pretrained LM with its vocabulary extended (stage 2), per run: the token dump is shared by
# every --tag, but a second run with another --pretrained_lm must not replace the first one's start.
lm_init=${exp}/lm_init/${tag}
# The "LM from scratch" row: the same fine-tuning from a random LM, trained beside the main one
# (scratch_lm). Without a pretrained LM the main LM is that random LM already (the same seed, the
# same fine-tuning), so the row reads the main LM rather than training the same LM twice.
scratch_lm=false; scratch_lm_dir=; scratch_note=
if awk '$1 == "lm_scratch_cd" {found = 1} END {exit !found}' <<< "${plan}"; then
    if [ -z "${pretrained_lm}" ] || [ "${pretrained_lm}" = none ]; then
        scratch_lm_dir=${lm_exp}; scratch_note="; LM from scratch row: the main LM (no pretrained LM)"
    else
        scratch_lm=true; scratch_lm_dir=${lm_exp}_scratch; scratch_note="; LM from scratch row: ${scratch_lm_dir}, beside the main LM"
    fi
fi
logdir=${exp}/logs/${tag}   # per run: a second --tag does not overwrite the first run's logs
mkdir -p ${logdir}
log "run '${tag}' (${corpus}, ${size} configs); stage 4 trains: ${flow_configs//$'\n'/ }${scratch_note}; logs: ${logdir}/"

# run_step NAME CMD...: run CMD with its output in exp/logs/<tag>/NAME.log; on failure show the log's tail.
run_step() {
    local name=$1; shift
    local logfile=${logdir}/${name}.log
    log "  $* > ${logfile}"
    if ! "$@" > "${logfile}" 2>&1; then
        log "FAILED: ${name}; last lines of ${logfile}:"
        # Progress bars redraw with \r: split them into lines and drop them (tqdm's "NN%|").
        tail -c 100000 "${logfile}" | tr '\r' '\n' | grep -v '%|' | tail -n 30 >&2
        # Under torchrun the last lines are the launcher's summary: name the workers' errors too.
        local errors
        errors=$(tr '\r' '\n' < "${logfile}" | grep -aE '(^|: )[A-Za-z_.]*(Error|Exception): ' | tail -n 4 || true)
        [ -z "${errors}" ] || log "FAILED: ${name}: the errors in ${logfile}:\n${errors}"
        exit 1
    fi
}

# beside CMD...: a step independent of the next ones in its stage. On CPU (--gpus 0) it runs in the
# background, side by side with them: every process has one thread (path.sh), so the cores are
# shared without BLAS threads contending. With GPUs it runs in the foreground, as each training
# takes all of them. wait_beside waits for them all and stops the run if one failed.
beside_pids=()
beside() {
    if [ "${gpus}" -gt 0 ]; then "$@"; return; fi
    "$@" &
    beside_pids+=($!)
}
wait_beside() {
    local pid failed=0
    for pid in "${beside_pids[@]}"; do wait "${pid}" || failed=1; done
    beside_pids=()
    [ ${failed} -eq 0 ] || { log "FAILED: a step run beside others (its log's tail is above)"; exit 1; }
}
# Background steps ignore Ctrl-C (non-interactive bash), and outlive a run stopped by a failure:
# take their processes down with the run.
stop_beside() {
    local pid
    for pid in "${beside_pids[@]}"; do pkill -TERM -P "${pid}" 2>/dev/null || true; kill "${pid}" 2>/dev/null || true; done
}
trap stop_beside EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- scale-out helpers: job arrays through cmd.sh, torchrun for stages 4-5 ----
[ -f ./cmd.sh ] && . ./cmd.sh || . "${SVSLM_ROOT}/cmd.sh"

# job_runner CONFIG KEY: cmd.sh's GPU runner when the YAML value at KEY (dotted) asks for CUDA
# ("cuda...", or "auto" with --gpus > 0), else its CPU runner.
job_runner() {
    local device
    device=$(python -c 'import sys, yaml
value = yaml.safe_load(open(sys.argv[1])) or {}
for key in sys.argv[2].split("."):
    value = value.get(key, "") if isinstance(value, dict) else ""
print(value)' "$1" "$2")
    if [[ "${device}" == cuda* ]] || { [ "${device}" = auto ] && [ "${gpus}" -gt 0 ]; }; then
        echo "${cuda_cmd}"
    else
        echo "${train_cmd}"
    fi
}

# run_jobs NAME RUNNER CMD...: CMD as a JOB=1:${num_jobs} array (JOB in CMD becomes 1..N), job J's
# log in exp/logs/NAME.J.log; on failure, the failed jobs' logs are named and the run stops.
run_jobs() {
    local name=$1 runner=$2; shift 2
    log "  ${runner} JOB=1:${num_jobs} ${exp}/logs/${name}.JOB.log $*"
    # shellcheck disable=SC2086 # the runner string holds its options
    if ! ${runner} JOB=1:${num_jobs} "${exp}/logs/${name}.JOB.log" "$@"; then
        log "FAILED: ${name} (a re-run redoes only what the failed jobs left undone)"
        exit 1
    fi
}

# Stages 4-5: torchrun with --gpus processes per node (data parallel). On CPU each flow is one
# process (stage 4 runs them side by side), and the vocoder is data parallel over --nj processes
# of one thread (gloo): on 2 idle cores 50 fine-tuning steps take 47 s instead of 70
# (bench/results/recipe.md).
if [ "${gpus}" -gt 0 ]; then
    # shellcheck disable=SC2206 # torchrun_opts is a list of options
    train_launcher=(torchrun --nproc_per_node "${gpus}" ${torchrun_opts:---standalone})
    vocoder_launcher=("${train_launcher[@]}")
else
    train_launcher=(python)
    vocoder_launcher=(python)
    # shellcheck disable=SC2206 # torchrun_opts is a list of options
    [ "${nj}" -le 1 ] || vocoder_launcher=(torchrun --nproc_per_node "${nj}" ${torchrun_opts:---standalone})
fi

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "===== Stage 1: data preparation (${corpus}: ${db_root} -> ${data}/) ====="
    run_step stage1_data "${SVSLM_ROOT}/local/${corpus}/data.sh" \
        --db_root "${db_root}" --data_dir ${data} --fs ${fs} --nj ${nj} --skip_bad ${skip_bad} ${local_data_opts}
fi

if [ ${stage} -le 2 ] && [ ${stop_stage} -ge 2 ]; then
    tokenizers_opt=
    if [ -n "${pretrained_tokenizers}" ] && [ "${pretrained_tokenizers}" != none ]; then
        tokenizers_opt="--pretrained_tokenizers $(conf_path "${pretrained_tokenizers}")"
    fi
    log "===== Stage 2: tokenization (svs_lb, codec_ssl, prompts) and vocabulary extension -> ${dump}/ ====="
    if [ "${num_jobs}" -gt 0 ]; then  # tokenizers once, shards as an array; the run below merges
        run_step stage2_tokenize_prepare python -m svslm.bin.tokenize \
            --config "${tokenize_config}" --data_dir ${data} --dump_dir ${dump} --part prepare ${tokenizers_opt} ${tokenize_args}
        run_jobs stage2_tokenize "$(job_runner "${tokenize_config}" codec.device)" python -m svslm.bin.tokenize \
            --config "${tokenize_config}" --data_dir ${data} --dump_dir ${dump} --job JOB --num_jobs ${num_jobs} ${tokenize_args}
    fi
    run_step stage2_tokenize python -m svslm.bin.tokenize \
        --config "${tokenize_config}" --data_dir ${data} --dump_dir ${dump} --nj ${nj} ${tokenizers_opt} ${tokenize_args}
    if [ -z "${pretrained_lm}" ] || [ "${pretrained_lm}" = none ]; then
        [ "${corpus}" = mini ] || { log "--pretrained_lm is required for ${corpus} (OpusLM_1.7B in ESPnet format)"; exit 1; }
        pretrained_lm=${exp}/pretrained_lm/${tag}   # a random LM of the config's geometry: the LM from scratch
        run_step stage2_make_pretrained python -m svslm.bin.lm_make_pretrained \
            --config "${lm_config}" --token_list ${dump}/token_list/codec_ssl.txt --out_dir ${pretrained_lm} ${pretrained_args}
    fi
    if ${scratch_lm}; then  # the same start without pretraining: a random LM of the config's geometry
        scratch_init_steps() {
            run_step stage2_make_scratch python -m svslm.bin.lm_make_pretrained \
                --config "${lm_config}" --token_list ${dump}/token_list/codec_ssl.txt --out_dir ${exp}/pretrained_lm/${tag}_scratch ${pretrained_args}
            run_step stage2_extend_vocab_scratch python -m svslm.bin.extend_vocab --config "${lm_config}" \
                --pretrained_dir ${exp}/pretrained_lm/${tag}_scratch --token_list ${dump}/token_list/svs_lb.txt \
                --out_dir ${lm_init}_scratch ${extend_vocab_args}
        }
        beside scratch_init_steps
    fi
    run_step stage2_extend_vocab python -m svslm.bin.extend_vocab --config "${lm_config}" \
        --pretrained_dir "${pretrained_lm}" --token_list ${dump}/token_list/svs_lb.txt --out_dir ${lm_init} ${extend_vocab_args}
    wait_beside
fi

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    log "===== Stage 3: LM fine-tuning with DeepSpeed (${lm_config}) -> ${lm_exp}/ ====="
    if [ "${gpus}" -gt 0 ]; then
        # shellcheck disable=SC2206 # deepspeed_opts is a list of options
        launcher=(deepspeed --num_gpus "${gpus}" ${deepspeed_opts})
    else
        launcher=(torchrun --standalone --nproc_per_node 1)   # DeepSpeed on CPU, one process
    fi
    # --module, not -m: the deepspeed launcher accepts only the long form (torchrun takes both).
    if ${scratch_lm}; then  # the same fine-tuning from random weights, beside the main one; only its test split is decoded (stage 6)
        scratch_lm_steps() {
            run_step stage3_lm_train_scratch "${launcher[@]}" --module svslm.bin.lm_train \
                --config "${lm_config}" --init_dir ${lm_init}_scratch \
                --train_json ${dump}/train/data.json --valid_json ${dump}/dev/data.json --exp_dir ${lm_exp}_scratch ${lm_args}
            run_step stage3_lm_decode_scratch_test python -m svslm.bin.lm_decode \
                --config "${decode_config}" --model_dir ${lm_exp}_scratch/best \
                --data_json ${dump}/test/data.json --out_dir ${lm_exp}_scratch/decode/test ${decode_args}
        }
        beside scratch_lm_steps
    fi
    run_step stage3_lm_train "${launcher[@]}" --module svslm.bin.lm_train \
        --config "${lm_config}" --init_dir ${lm_init} \
        --train_json ${dump}/train/data.json --valid_json ${dump}/dev/data.json --exp_dir ${lm_exp} ${lm_args}
    decode_steps() {  # decode_steps SPLIT: the fine-tuned LM's decoding of one split
        local split=$1 runner device
        if [ "${num_jobs}" -gt 0 ]; then  # chunks as an array (on GPUs with --gpus); the run below merges
            runner=${train_cmd}; device=cpu  # a --device in decode_args comes last and wins
            [ "${gpus}" -gt 0 ] && runner=${cuda_cmd} && device=cuda
            run_jobs stage3_lm_decode_${split} "${runner}" python -m svslm.bin.lm_decode \
                --config "${decode_config}" --model_dir ${lm_exp}/best \
                --data_json ${dump}/${split}/data.json --out_dir ${lm_exp}/decode/${split} \
                --device ${device} --job JOB --num_jobs ${num_jobs} ${decode_args}
        fi
        # On CPU a split's shards are decoded by --nj processes (the train split is most of the work).
        run_step stage3_lm_decode_${split} python -m svslm.bin.lm_decode \
            --config "${decode_config}" --model_dir ${lm_exp}/best \
            --data_json ${dump}/${split}/data.json --out_dir ${lm_exp}/decode/${split} ${decode_nj_opt} ${decode_args}
    }
    decode_nj_opt=; [ "${gpus}" -gt 0 ] || decode_nj_opt="--nj ${nj}"
    for split in ${lm_decode_sets}; do  # the splits are independent: side by side on CPU
        beside decode_steps ${split}
    done
    wait_beside
fi

if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ]; then
    log "===== Stage 4: flow matching (${flow_configs//$'\n'/ }) -> ${exp}/flow/ ====="
    for flow_config in ${flow_configs}; do  # the flows are independent: side by side on CPU
        flow_tag=$(basename "${flow_config}" .yaml)
        beside run_step stage4_flow_${flow_tag} "${train_launcher[@]}" -m svslm.bin.flow_train \
            --config "${flow_config}" --data_dir ${data} --dump_dir ${dump} \
            --lm_decode_dir ${lm_exp}/decode --exp_dir ${exp}/flow/${tag}/${flow_tag} ${flow_args}
    done
    wait_beside
fi

if [ ${stage} -le 5 ] && [ ${stop_stage} -ge 5 ]; then
    log "===== Stage 5: HiFi-GAN vocoder (${vocoder_config}) -> ${voc_exp}/ ====="
    if [ -n "${pretrained_vocoder}" ] && [ "${pretrained_vocoder}" != none ]; then
        pretrained_vocoder=$(conf_path "${pretrained_vocoder}")
        vocoder_args="--override train.init_from=${pretrained_vocoder} ${vocoder_args}"
    fi
    run_step stage5_vocoder "${vocoder_launcher[@]}" -m svslm.bin.vocoder_train \
        --config "${vocoder_config}" --data_dir ${data} --exp_dir ${voc_exp} ${vocoder_args}
fi

if [ ${stage} -le 6 ] && [ ${stop_stage} -ge 6 ]; then
    log "===== Stage 6: inference, scoring, RESULTS.md and report -> ${eval_exp}/ ====="
    scratch_opt=${scratch_lm_dir:+--lm_scratch_dir ${scratch_lm_dir}}
    if [ "${num_jobs}" -gt 0 ]; then  # utterances as an array; the run below writes the manifest
        run_jobs stage6_infer "$(job_runner "${infer_config}" device)" python -m svslm.bin.infer \
            --config "${infer_config}" --data_dir ${data}/test --dump_dir ${dump} \
            --lm_dir ${lm_exp} ${scratch_opt} --flow_root ${exp}/flow/${tag} --vocoder_dir ${voc_exp} \
            --out_dir ${eval_exp} --job JOB --num_jobs ${num_jobs} ${infer_args}
    fi
    run_step stage6_infer python -m svslm.bin.infer \
        --config "${infer_config}" --data_dir ${data} --split test --dump_dir ${dump} \
        --lm_dir ${lm_exp} ${scratch_opt} --flow_root ${exp}/flow/${tag} --vocoder_dir ${voc_exp} \
        --out_dir ${eval_exp} --nj ${nj} ${infer_args}
    # PER needs a recogniser: a pretrained one (the mini zoo's), else a phoneme CTC model trained here
    # on the corpus's training audio.
    if [ -n "${pretrained_asr}" ] && [ "${pretrained_asr}" != none ]; then
        asr_dir=$(conf_path "${pretrained_asr}")
        log "PER recogniser: ${asr_dir} (pretrained, not trained here)"
    else
        asr_dir=${exp}/asr/${tag}
        run_step stage6_asr_train python -m svslm.bin.asr_train \
            --config "${asr_config}" --data_dir ${data} --exp_dir ${asr_dir} ${asr_args}
    fi
    run_step stage6_score python -m svslm.bin.score_eval \
        --config "${score_config}" --data_dir ${data} --split test --eval_dir ${eval_exp} \
        --asr_dir ${asr_dir} --nj ${nj} ${score_args}
    run_step stage6_report python -m svslm.bin.report --eval_dir ${eval_exp} --nj ${nj} ${report_args}
    log "Results: ${eval_exp}/RESULTS.md; report: ${eval_exp}/report/index.html"
    cat ${eval_exp}/RESULTS.md >&2
fi

log "Successfully finished stages ${stage}-${stop_stage}."
