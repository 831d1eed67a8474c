#!/bin/sh
# Forrest's built-in Forgejo job: `forgejo-runner one-job` on an ephemeral
# runner that Forrest registered for this one job attempt (its handle), in
# host mode: the VM is the isolation. The runner comes from the image
# (forrest image build debian --forgejo-runner-version) when it is on PATH,
# else it is downloaded and checked against setup_template.parameters
# FORGEJO_RUNNER_VERSION and FORGEJO_RUNNER_SHA256 (FORGEJO_RUNNER_URL for a
# mirror). What Forgejo sent is read from files beside this one, never
# pasted into the script.
set -eu

config=/home/runner/config
runner=$(command -v forgejo-runner || true)
if [ -z "$runner" ]; then
  version="<FORGEJO_RUNNER_VERSION>"
  sha256="<FORGEJO_RUNNER_SHA256>"
  base="<FORGEJO_RUNNER_URL>"
  if [ -z "$version" ] || [ -z "$sha256" ]; then
    echo "forrest: no forgejo-runner on PATH, and no FORGEJO_RUNNER_VERSION" \
      "and FORGEJO_RUNNER_SHA256 parameters to download one" >&2
    exit 1
  fi
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
    *) arch=$(uname -m) ;;
  esac
  mkdir -p /home/runner/.local/bin
  runner=/home/runner/.local/bin/forgejo-runner
  curl -fsSL --retry 3 -o "$runner" \
    "$base/v$version/forgejo-runner-$version-linux-$arch"
  echo "$sha256  $runner" | sha256sum -c --quiet -
  chmod 0755 "$runner"
fi

# One --label NAME:host per label: Forgejo gives a runner only jobs all of
# whose runs-on labels it declared.
set -f
set -- one-job \
  --url "$(cat "$config/forge-url")" \
  --uuid "$(cat "$config/runner-uuid")" \
  --token-url "file:$config/runner-token" \
  --handle "$(cat "$config/job-handle")" \
  --wait
old_ifs=$IFS
IFS=,
for label in $(cat "$config/runner-labels"); do
  set -- "$@" --label "$label:host"
done
IFS=$old_ifs
set +f

# The guest API (docs/guest.md), as in the GitHub template.
export FORREST_API_URL="http://10.0.2.100:8080"
export FORREST_RUN_TOKEN_FILE="$config/run-token"
# With package_token: the repository's CI user and this job's write:package
# token (docs/forgejo.md), e.g. for docker login --password-stdin.
if [ -s "$config/package-token" ]; then
  FORREST_PACKAGE_USER=$(cat "$config/package-user")
  export FORREST_PACKAGE_USER
  export FORREST_PACKAGE_TOKEN_FILE="$config/package-token"
fi

cd /home/runner
exec "$runner" "$@"
