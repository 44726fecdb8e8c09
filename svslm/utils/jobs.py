"""Job arrays: job J of N (1-based, as `JOB=1:N` in cmd.sh's runners) takes every N-th work unit.

A stage that runs as N jobs splits its work into units that are resumable on their own (stage 2's
shards, stage 3's decoding shards, stage 6's utterances); job J does the units i with
i % N == J - 1 and writes only their files; a last run without --job merges them (and does any
unit a killed job left undone). Units are split round-robin so that sorted, similar-length work
spreads evenly over the jobs.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class JobSlice:
    job: int  # this job, 1..num_jobs
    num_jobs: int  # jobs in the array

    def __post_init__(self) -> None:
        if not 1 <= self.job <= self.num_jobs:
            raise ValueError(f"--job {self.job} is not in 1..{self.num_jobs} (--num_jobs)")

    def owns(self, index: int) -> bool:
        """Whether work unit `index` (0-based) is this job's."""
        return index % self.num_jobs == self.job - 1

    def select(self, units: Sequence[T]) -> list[T]:
        return [u for i, u in enumerate(units) if self.owns(i)]

    def __str__(self) -> str:
        return f"job {self.job} of {self.num_jobs}"


def add_job_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job", type=int, default=None,
                        help="run as job J (1-based) of a --num_jobs array: only this job's share of the "
                             "work, no merge; a later run without --job merges")
    parser.add_argument("--num_jobs", type=int, default=None, help="jobs in the array (with --job)")


def job_from_args(args: argparse.Namespace) -> JobSlice | None:
    if (args.job is None) != (args.num_jobs is None):
        raise ValueError("--job and --num_jobs go together")
    return None if args.job is None else JobSlice(args.job, args.num_jobs)
