#!/usr/bin/env bash
# Parse `--name value` options into shell variables that the sourcing script already defines
# (the Kaldi/ESPnet convention). `--name=value` also works. An unknown option is an error.
while true; do
    [ -z "${1:-}" ] && break
    case "$1" in
        --help|-h)
            echo "Usage: $0 [--option value ...]; options are the variables at the top of $0" >&2
            grep -E '^[a-z_]+=.*#' "$0" | sed 's/^/    --/' >&2
            exit 0 ;;
        --*=*)
            name=${1%%=*}; name=${name#--}; value=${1#*=}; shift ;;
        --*)
            name=${1#--}
            [ $# -lt 2 ] && { echo "$0: option --${name} needs a value" >&2; exit 1; }
            value=$2; shift 2 ;;
        *) break ;;
    esac
    name=${name//-/_}
    if ! declare -p "${name}" >/dev/null 2>&1; then
        echo "$0: unknown option --${name}" >&2; exit 1
    fi
    printf -v "${name}" '%s' "${value}"
done
true
