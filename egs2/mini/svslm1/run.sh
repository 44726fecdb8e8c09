#!/usr/bin/env bash
# ESPnet-style entry point for the mini corpus: outputs go under this directory.
set -euo pipefail
cd "$(dirname "$0")"
exec ../../../run.sh --corpus mini "$@"
