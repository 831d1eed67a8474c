#!/bin/sh
# Test stand-in for the GitHub Actions runner (tests/github/double.ts), which
# cannot be downloaded in tests. It speaks to the GitHub double's /_guest/
# endpoints, each time with its JIT config as the body: online, then take
# until a job comes (the job's script), then done with the script's exit
# code. Works with curl (Debian image) or busybox wget (busybox guest).
set -u

jit="<JITCONFIG>"
name="<RUNNER_NAME>"
# The double, through qemu's guestfwd; the override is for running this on
# the host in the double's own tests.
base="${GITHUB_DOUBLE_URL:-http://10.0.2.100:80}"
home="${HOME:-/home/runner}"
give_up=$(($(date +%s) + 300))

body=$(mktemp)
trap 'rm -f "$body" "$body.headers"' EXIT

# post PATH: POSTs the JIT config; prints the status code (000 when the
# double cannot be reached) and leaves the answer in $body.
post() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -m 30 -o "$body" -w '%{http_code}' --data-binary "$jit" \
      "$base$1" || true
  else
    # No -T: busybox 1.35's wget crashes with it.
    wget -q -S -O "$body" --post-data="$jit" "$base$1" \
      2>"$body.headers"
    code=$(sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' \
      "$body.headers" | tail -n 1)
    echo "${code:-000}"
  fi
}

# wait_or_give_up WHAT: sleeps a second, or fails after 300 s in all.
wait_or_give_up() {
  if [ "$(date +%s)" -ge "$give_up" ]; then
    echo "standin: gave up waiting for $1" >&2
    exit 1
  fi
  sleep 1
}

until [ "$(post /_guest/online)" = 200 ]; do
  wait_or_give_up "the GitHub double"
done
echo "standin: runner $name online"

while :; do
  code=$(post /_guest/take)
  case "$code" in
    200) break ;;
    204 | 000 | 5??) wait_or_give_up "a job" ;;
    *)
      echo "standin: take answered $code" >&2
      exit 1
      ;;
  esac
done

echo "standin: runner $name running its job"
script=$(cat "$body")
status=0
(cd "$home" && sh -c "$script") </dev/null || status=$?
echo "standin: job exited $status"

# 404: the runner was deleted meanwhile, so there is no one to tell.
while :; do
  case "$(post "/_guest/done?exit=$status")" in
    200 | 404) exit 0 ;;
    *) wait_or_give_up "the GitHub double to take the result" ;;
  esac
done
