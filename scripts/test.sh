#!/usr/bin/env bash
# Sets Forrest up (scripts/setup.sh) and runs every check: formatting, lint,
# type check and the tests (deno task ok). Arguments go to setup.sh, after
# --tests (the packages only the tests need).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" --tests "$@"
cd "$root"
export PATH="$root/.tools/bin:$PATH"
exec deno task ok
