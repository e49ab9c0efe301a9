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
  libboost-context-dev  # fiber model: boost::context::fiber, stackful, one per connection
  libhttp-parser-dev  # the shared codec's parser (what http_parser.rb wraps)
  libbenchmark-dev    # microbenchmarks
  libgtest-dev        # unit tests
  wrk                 # load generator
  nghttp2-client      # h2load --h1: third load generator, cross-checks wrk and cbench-load
  python3             # /usr/bin/python3 runs the harness scripts
  python3-matplotlib  # charts
  chromium            # headless browser: the report_browser test opens report/index.html
  procps              # ps, for orphan checks in tests
  util-linux          # taskset (CPU pinning)
  linux-perf          # perf stat: exact system-call counts per request (optional at run time)
  liburing-dev        # io-uring model and the floor's io-uring mode: liburing 2.3
  nginx-light         # peer row `nginx`: the harness writes its config and runs it per point
  h2o                 # peer row `h2o`: likewise
  # The Ruby stack: the replicas of the published servers (servers/ruby/, peer rows ruby-*)
  # and the real Ruby servers run as peers.
  ruby                # Ruby 3.1: runs servers/ruby/*.rb
  ruby3.1-dev         # headers for Ruby C extensions
  ruby-nio4r          # NIO::Selector: the published nio4r rows (2.5.8, as Ever's Gemfile.lock)
  ruby-http-parser.rb # Http::Parser: the published servers' request parser
  ruby-eventmachine   # EventMachine: the ruby-em replica
  ruby-minitest       # Ruby-side tests
  ruby-rack           # the Rack interface the real Ruby servers serve
  thin                # real Ruby servers run as peers
  puma
  unicorn
  ruby-async-http     # Falcon's HTTP layer
  # Separate hosts: ip netns for namespace hosts and make test-multihost; OpenSSH for ssh://
  # hosts, and the test's own sshd inside a namespace (the system service is never started).
  iproute2
  openssh-client
  openssh-server
)

# Packages that are servers: Debian starts them as system services on install (nginx on port
# 80). The harness starts its own instances on ports it picks; a system instance would only use
# CPU and a port behind the benchmark's back. So their services are kept from starting during
# the install and disabled after it.
SERVICES=(nginx h2o ssh)

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

# Keep every service from starting during the install: invoke-rc.d and deb-systemd-invoke ask
# /usr/sbin/policy-rc.d, and 101 means "action forbidden". Our own file is removed afterwards
# (also on failure); an existing one (Docker images ship one) is left alone.
POLICY=/usr/sbin/policy-rc.d
our_policy=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# written by concurrency-bench scripts/deps.sh for the duration of an install\nexit 101\n' \
    | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  our_policy=1
fi
remove_policy() { if [ "$our_policy" -eq 1 ]; then $SUDO rm -f "$POLICY"; our_policy=0; fi; }
trap remove_policy EXIT

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
remove_policy

# Services just installed: make sure none runs, and none starts at boot.
for svc in "${SERVICES[@]}"; do
  case " ${missing[*]} " in
    *" $svc "* | *" $svc-light "* | *" open$svc-server "*) ;;  # openssh-server's service is ssh
    *) continue ;;
  esac
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
  else
    command -v service >/dev/null && $SUDO service "$svc" stop >/dev/null 2>&1 || true
    command -v update-rc.d >/dev/null && $SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
  # Belt and braces for an init system neither of the above reached: stop by pid file.
  for pidfile in "/run/$svc.pid" "/var/run/$svc.pid"; do
    if [ -s "$pidfile" ]; then
      $SUDO kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
done
echo "deps.sh: done"
