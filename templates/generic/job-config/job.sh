#!/bin/sh
# Forrest's built-in job: one GitHub Actions job on a just-in-time runner.
# The runner comes from /home/runner/actions-runner when the image has it
# (forrest image build --runner-version), else it is downloaded and checked
# against setup_template.parameters RUNNER_VERSION and RUNNER_SHA256 (or
# RUNNER_HASH, the original's name).
set -eu

runner_dir=/home/runner/actions-runner
if [ ! -x "$runner_dir/run.sh" ]; then
  version="<RUNNER_VERSION>"
  sha256="<RUNNER_SHA256>"
  if [ -z "$version" ] || [ -z "$sha256" ]; then
    echo "forrest: no actions runner in $runner_dir, and no RUNNER_VERSION and" \
      "RUNNER_SHA256 parameters to download one" >&2
    exit 1
  fi
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
  esac
  tarball=$(mktemp)
  curl -fsSL --retry 3 -o "$tarball" \
    "https://github.com/actions/runner/releases/download/v$version/actions-runner-linux-$arch-$version.tar.gz"
  echo "$sha256  $tarball" | sha256sum -c --quiet -
  mkdir -p "$runner_dir"
  tar -xzf "$tarball" -C "$runner_dir"
  rm -f "$tarball"
fi

# The guest API (docs/guest.md): the forrest-runner/upload-artifact action
# reads these, as with the original's template.
export FORREST_API_URL="http://10.0.2.100:8080"
export FORREST_RUN_TOKEN_FILE="/home/runner/config/run-token"

cd "$runner_dir"
exec ./run.sh --jitconfig "<JITCONFIG>"
