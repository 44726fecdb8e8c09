#!/usr/bin/env python3
"""Run a command, or a JOB=1:N array of it, on a Slurm or Grid Engine cluster and wait for it
(the design of Kaldi/ESPnet's slurm.pl and queue.pl; cmd.sh chooses the backend).

    utils/run_cluster.py --backend slurm [--config conf/slurm.conf] [--gpu 1] [--mem 16G]
        [--num_threads 4] [--time 4:00:00] [--max_jobs_run 8] [JOB=1:N] LOG COMMAND...

One array submission (sbatch --wait --array / qsub -sync y -t) whose task J runs COMMAND with the
word JOB replaced by J, in this directory with path.sh sourced, its output in LOG (JOB replaced
too), which starts with the command and ends with "# ended <date>, status <rc>", as
utils/run_local.sh writes it. The scheduler's own messages go to <log dir>/q/. Exits 0 when every
task succeeded, else 1 after naming the failed tasks' logs.

The config file maps options to scheduler flags, one rule a line (Kaldi's format):
    command sbatch --export=ALL           the submit command and its fixed flags
    option gpu=0                          an option's value with no flag
    option gpu=* --gres=gpu:$0            any other value: $0 is the value
    default gpu=0                         the value when the caller gives none
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

OPTIONS = ("gpu", "mem", "num_threads", "time", "max_jobs_run")

BUILTIN = {  # used when --config is not given; conf/slurm.conf and conf/queue.conf say the same
    "slurm": """command sbatch --export=ALL
option gpu=0
option gpu=* --gres=gpu:$0
option mem=* --mem=$0
option num_threads=* --cpus-per-task=$0
option time=* --time=$0
default gpu=0
""",
    "sge": """command qsub -v PATH -cwd -S /bin/bash -j y
option gpu=0
option gpu=* -l gpu=$0 -q g.q
option mem=* -l mem_free=$0,ram_free=$0
option num_threads=* -pe smp $0
option time=* -l h_rt=$0
default gpu=0
""",
}


def read_rules(text: str, where: str) -> tuple[list[str], dict[str, list[tuple[str, str]]], dict[str, str]]:
    """(submit command, option -> [(value pattern, flags)], defaults) from a config's text."""
    command, rules, defaults = [], {}, {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind == "command":
            command = shlex.split(rest)
        elif kind in ("option", "default"):
            m = re.fullmatch(r"(\w+)=(\S+)\s*(.*)", rest.strip())
            if not m or m.group(1) not in OPTIONS:
                raise SystemExit(f"{where}:{n}: expected '{kind} <{'|'.join(OPTIONS)}>=<value> ...', got {raw!r}")
            if kind == "option":
                rules.setdefault(m.group(1), []).append((m.group(2), m.group(3)))
            else:
                defaults[m.group(1)] = m.group(2)
        else:
            raise SystemExit(f"{where}:{n}: a rule starts with command, option or default, got {raw!r}")
    if not command:
        raise SystemExit(f"{where}: no 'command' line")
    return command, rules, defaults


def flags_for(name: str, value: str, rules: dict[str, list[tuple[str, str]]], where: str) -> list[str]:
    for pattern, flags in rules.get(name, []):
        if pattern == value:
            return shlex.split(flags)
        if pattern == "*":
            return shlex.split(flags.replace("$0", value))
    raise SystemExit(f"{where}: no rule for --{name} {value}")


def task_script(cwd: Path, log: str, command: list[str], task_var: str) -> str:
    """The shell script every task of the array runs: JOB in the log and the command's words
    becomes the task's index."""
    words = " ".join(shlex.quote(w) for w in command)
    return f"""#!/usr/bin/env bash
cd {shlex.quote(str(cwd))}
[ -f ./path.sh ] && . ./path.sh
JOB=${{{task_var}:-1}}
cmd=({words})
cmd=("${{cmd[@]//JOB/$JOB}}")
log={shlex.quote(log)}
log=${{log//JOB/$JOB}}
mkdir -p "$(dirname "$log")"
{{ echo "# ${{cmd[*]}}"; echo "# started $(date '+%Y-%m-%dT%H:%M:%S') on $(hostname)"; }} > "$log"
( "${{cmd[@]}}" ) >> "$log" 2>&1
rc=$?
echo "# ended $(date '+%Y-%m-%dT%H:%M:%S'), status $rc" >> "$log"
exit $rc
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=sorted(BUILTIN), required=True)
    parser.add_argument("--config", default=None, help="option rules (conf/slurm.conf, conf/queue.conf)")
    for name in OPTIONS:
        parser.add_argument(f"--{name}", default=None)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="[JOB=1:N] LOG COMMAND...")
    args = parser.parse_args(argv)
    rest = list(args.rest)
    first = last = 1
    array = bool(rest) and re.fullmatch(r"JOB=(\d+):(\d+)", rest[0])
    if array:
        first, last = int(array.group(1)), int(array.group(2))
        rest = rest[1:]
    if len(rest) < 2:
        parser.error("expected [JOB=1:N] LOG COMMAND...")
    log, command = rest[0], rest[1:]

    where = args.config or f"built-in {args.backend} rules"
    text = Path(args.config).read_text(encoding="utf-8") if args.config else BUILTIN[args.backend]
    submit, rules, defaults = read_rules(text, where)
    values = {**defaults, **{k: v for k in OPTIONS if (v := getattr(args, k)) is not None}}
    flags = [f for name, value in values.items() if name != "max_jobs_run" for f in flags_for(name, value, rules, where)]

    log_dir = Path(log.replace("JOB", "1")).parent / "q"
    log_dir.mkdir(parents=True, exist_ok=True)
    name = Path(log).name.replace(".JOB", "").replace("JOB", "").removesuffix(".log") or "job"
    script = log_dir / f"{name}.sh"
    task_var = "SLURM_ARRAY_TASK_ID" if args.backend == "slurm" else "SGE_TASK_ID"
    script.write_text(task_script(Path.cwd(), log, command, task_var), encoding="utf-8")
    script.chmod(0o755)
    limit = values.get("max_jobs_run")
    if args.backend == "slurm":
        jobs = f"{first}-{last}" + (f"%{limit}" if limit else "")
        cmd = [*submit, *flags, "--wait", f"--array={jobs}", f"--job-name={name}",
               f"--output={log_dir}/{name}.%a.out", str(script)]
    else:
        cmd = [*submit, *flags, "-sync", "y", "-t", f"{first}-{last}", "-N", name,
               "-o", str(log_dir / f"{name}.$TASK_ID.out"), *(["-tc", limit] if limit else []), str(script)]
    with open(log_dir / f"{name}.submit", "w", encoding="utf-8") as f:
        f.write(shlex.join(cmd) + "\n")
    rc = subprocess.run(cmd, check=False, env=os.environ).returncode
    failed = [j for j in range(first, last + 1) if not _succeeded(log.replace("JOB", str(j)))]
    if rc != 0 or failed:
        logs = " ".join(log.replace("JOB", str(j)) for j in failed) or f"(submission: {log_dir}/{name}.*)"
        print(f"{sys.argv[0]}: {len(failed)} of {last - first + 1} jobs failed (submit status {rc}); logs: {logs}",
              file=sys.stderr)
        return 1
    return 0


def _succeeded(log: str) -> bool:
    try:
        lines = Path(log).read_text(encoding="utf-8", errors="replace").rstrip().splitlines()
    except OSError:
        return False
    return bool(lines) and lines[-1].endswith(", status 0")


if __name__ == "__main__":
    sys.exit(main())
