#!/usr/bin/env bash
# Install the Debian packages concurrency-bench needs, and only those that are missing.
# Contract: checks each package with dpkg first; runs `apt-get update` at most once, and only
# when something is missing; never prompts. Safe to call from every make target.
set -euo pipefail

# Package -> why it is needed. Keep in sync with CMakeLists.txt (which names these on failure).
PACKAGES=(
  g++                 # compiler (C++20)
  clang               # second compiler: sanitizer and fuzzer builds
  libclang-rt-14-dev  # clang's sanitizer/fuzzer runtimes
  cmake               # build
  make
  pkg-config          # finds libev/libuv/http-parser
  libev-dev           # pull loop backend (Ever's own loop)
  libuv1-dev          # libuv model
  libboost-dev        # Boost.Asio models (header-only parts)
  libhttp-parser-dev  # the shared codec's parser (what http_parser.rb wraps)
  libbenchmark-dev    # microbenchmarks
  libgtest-dev        # unit tests
  wrk                 # load generator
  python3             # /usr/bin/python3 runs the harness scripts
  python3-matplotlib  # charts
  procps              # ps, for orphan checks in tests
  util-linux          # taskset (CPU pinning)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps.sh: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "deps.sh: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps.sh: done"
