#!/usr/bin/env bash
# Sets up Forrest from a fresh checkout; safe to run again at any time.
#
#   1. Deno 2.9.x: the one on PATH if it fits, else deno@2.9.6 from npm into
#      .tools/ (git-ignored). .tools/bin/deno points at the one chosen.
#   2. The Debian packages Forrest runs (qemu, image and FAT tools, pasta,
#      swtpm for TPMs, vde2 for extra NICs) and, with --tests (which
#      scripts/test.sh passes), those only its tests need (btrfs-progs for
#      the reflink tests, chromium for the dashboard's browser test);
#      apt-get update once, only when something is missing. Skip with
#      --no-packages.
#   3. Forrest's npm dependencies, pinned by deno.lock.
#   4. ./forrest: `deno compile`d; where deno compile cannot fetch its runtime
#      (no access to dl.deno.land), a launcher that runs main.ts with deno.
set -euo pipefail

DENO_VERSION=2.9.6
DENO_SERIES=2.9.
PACKAGES=(qemu-system-x86 qemu-utils mtools dosfstools e2fsprogs mmdebstrap skopeo umoci passt swtpm swtpm-tools vde2 xz-utils zstd)
TEST_PACKAGES=(btrfs-progs chromium)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
install_packages=1
for arg in "$@"; do
  case "$arg" in
    --no-packages) install_packages=0 ;;
    --tests) PACKAGES+=("${TEST_PACKAGES[@]}") ;;
    -h | --help)
      sed -n '2,14s/^# \{0,1\}//p' "$0"
      exit 0
      ;;
    *)
      echo "setup.sh: unknown option $arg (use --no-packages, --tests or --help)" >&2
      exit 2
      ;;
  esac
done

say() { printf 'setup: %s\n' "$*" >&2; }

deno_version() { "$1" --version 2>/dev/null | sed -n 's/^deno \([0-9.]*\).*/\1/p'; }

# --- 1. Deno ---------------------------------------------------------------
mkdir -p .tools/bin
deno=""
if system_deno=$(command -v deno) && [[ "$system_deno" != "$root/.tools/"* ]] &&
  [[ "$(deno_version "$system_deno")" == "$DENO_SERIES"* ]]; then
  deno=$system_deno
  say "using deno $(deno_version "$deno") from $deno"
elif [[ "$(deno_version .tools/deno/bin/deno)" == "$DENO_VERSION" ]]; then
  deno=$root/.tools/deno/bin/deno
else
  command -v npm >/dev/null || {
    say "need npm to install Deno (or put deno $DENO_SERIES* on PATH)"
    exit 1
  }
  say "installing deno $DENO_VERSION from npm into .tools/deno"
  npm install --global --prefix .tools/deno --no-audit --no-fund --loglevel=error \
    "deno@$DENO_VERSION" >&2
  deno=$root/.tools/deno/bin/deno
  [[ "$(deno_version "$deno")" == "$DENO_VERSION" ]] || {
    say "npm installed deno, but $deno does not run"
    exit 1
  }
fi
# Relative when it is our own, so that a moved checkout keeps working.
ln -sfn "${deno/#$root\/.tools\//../}" .tools/bin/deno

# --- 2. Debian packages ----------------------------------------------------
if ((install_packages)); then
  missing=()
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$package")
  done
  if ((${#missing[@]})); then
    sudo=()
    if ((EUID != 0)); then
      if command -v sudo >/dev/null; then
        sudo=(sudo)
      else
        say "need root (or sudo) to install: ${missing[*]}"
        say "install them yourself, then run again with --no-packages"
        exit 1
      fi
    fi
    say "installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >&2
  fi
fi

# The tests download Debian's cloud kernel and a static busybox with
# apt-get download, which needs apt's package lists even when every package
# above was installed already.
if ((install_packages)) && ! apt-cache show busybox-static linux-image-cloud-amd64 >/dev/null 2>&1; then
  say "refreshing apt's package lists (apt-get update)"
  if ((EUID == 0)); then apt-get update -qq >&2; elif command -v sudo >/dev/null; then sudo apt-get update -qq >&2; fi
fi

# --- 3. Dependencies -------------------------------------------------------
"$deno" install --frozen --quiet

# --- 4. ./forrest ----------------------------------------------------------
compile_log=$(mktemp)
trap 'rm -f "$compile_log"' EXIT
# deno compile will not overwrite a file it did not make, such as a launcher.
rm -f forrest
if NO_COLOR=1 "$deno" task --quiet compile >"$compile_log" 2>&1; then
  say "built ./forrest with deno compile"
elif grep -q "dl.deno.land" "$compile_log"; then
  say "deno compile cannot fetch its runtime (denort) from dl.deno.land here;"
  say "writing ./forrest as a launcher that runs main.ts with deno instead"
  cat >forrest <<LAUNCHER
#!/bin/sh
# Written by scripts/setup.sh because \`deno compile\` could not fetch its
# runtime on this machine: runs Forrest from source, with the permissions
# the compiled binary has (deno.json, task "compile"), and its V8 heap
# limits (docs/architecture.md: memory).
here=\$(dirname "\$(readlink -f "\$0")")
exec "\$here/.tools/bin/deno" run --quiet --no-prompt --allow-all --frozen \\
  --v8-flags=--max-semi-space-size=4,--max-old-space-size=96 \\
  --config "\$here/deno.json" "\$here/main.ts" "\$@"
LAUNCHER
  chmod +x forrest
else
  say "deno compile failed:"
  cat "$compile_log" >&2
  exit 1
fi
