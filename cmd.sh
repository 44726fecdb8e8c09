# cmd.sh: where run.sh's job arrays run (ESPnet's convention). run.sh sources ./cmd.sh when the
# recipe directory has one, else this file. Choose the backend with `--cmd_backend` or edit it here.
#
#   local   utils/run_local.sh: background processes on this machine, one log per job
#   slurm   utils/run_slurm.sh: sbatch --array, options from conf/slurm.conf
#   queue   utils/run_queue.sh: Grid Engine qsub -t, options from conf/queue.conf
#
# Every runner is called as `${cmd} [--gpu 1] JOB=1:N LOG COMMAND...` (JOB replaced by 1..N).
# train_cmd: CPU jobs (stage 2 on CPU, stage 6 synthesis); cuda_cmd: one GPU per job (a stage
# whose config asks for CUDA). Add a partition, account or memory in the conf file, not here.
cmd_backend=${cmd_backend:-local}
case "${cmd_backend}" in
    local)
        train_cmd="${SVSLM_ROOT}/utils/run_local.sh"
        cuda_cmd="${SVSLM_ROOT}/utils/run_local.sh --gpu 1" ;;
    slurm)
        train_cmd="${SVSLM_ROOT}/utils/run_slurm.sh --config ${SVSLM_ROOT}/conf/slurm.conf"
        cuda_cmd="${train_cmd} --gpu 1" ;;
    queue)
        train_cmd="${SVSLM_ROOT}/utils/run_queue.sh --config ${SVSLM_ROOT}/conf/queue.conf"
        cuda_cmd="${train_cmd} --gpu 1" ;;
    *) echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local | slurm | queue)" >&2; return 1 ;;
esac
