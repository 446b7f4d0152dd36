#!/usr/bin/env bash
# install-tools.sh — the ONE place the build container's tools are installed and checked.
#
#   install-tools.sh install                     in the Dockerfile (as root): apt packages,
#                                                OpenTofu and kubectl (pinned, SHA-256
#                                                verified), the `platform` user
#   install-tools.sh --check [--dockerfile F]    on a host or in CI, no network: the pins in
#                                                the Dockerfile are well-formed, the apt
#                                                package list is sane (and known to apt when
#                                                its lists are present), the launchers parse,
#                                                and what the tests need is installed
#   install-tools.sh --verify FILE SHA256        the checksum step of `install` on its own:
#                                                exit 1 unless FILE has exactly that SHA-256
#   install-tools.sh --help
#
# Pins (versions + SHA-256 per architecture) live in ONE place: the ARG lines of the
# Dockerfile. `install` receives them as environment variables (Docker passes ARGs to RUN),
# `--check` reads their defaults from the Dockerfile. Checksums are the published ones:
#   OpenTofu: tofu_<version>_SHA256SUMS on https://github.com/opentofu/opentofu/releases
#             (signed; https://opentofu.org/docs/intro/install/standalone/)
#   kubectl:  https://dl.k8s.io/release/<version>/bin/linux/<arch>/kubectl.sha256
#             (https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/)
#
# Exit codes: 0 ok; 1 a check failed, a download failed or a checksum did not match;
# 2 bad arguments.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"

# Runtime packages of the image (Debian bookworm names). Not version-pinned on purpose:
# the Debian mirrors drop superseded versions (security updates), so exact pins break the
# build within weeks; reproducibility comes from the base image digest, and a rebuild picks
# up security fixes.
#   ca-certificates  TLS roots for git, tofu (registry, providers) and kubectl
#   openssh-client   ssh/ssh-agent/ssh-add to the bastion (ProxyJump)
#   git, jq          operator tools the README uses
#   libnss-wrapper   gives the host's UID a passwd entry (ssh refuses to run without one)
#   tini             PID 1: forwards signals (Ctrl-C) and reaps zombies
RUNTIME_PACKAGES=(ca-certificates openssh-client git jq libnss-wrapper tini)
# Needed only while installing; purged at the end of `install`.
BUILD_ONLY_PACKAGES=(curl unzip)
# The pins the Dockerfile must define (ARG NAME=value).
PIN_NAMES=(OPENTOFU_VERSION OPENTOFU_SHA256_AMD64 OPENTOFU_SHA256_ARM64
  KUBECTL_VERSION KUBECTL_SHA256_AMD64 KUBECTL_SHA256_ARM64)

die() { echo "install-tools: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

# Prints why one pin value is malformed; prints nothing when it is well-formed.
pin_problem() {
  local name="$1" value="$2"
  case "$name" in
    OPENTOFU_VERSION) [[ "$value" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || echo "$name=$value is not a release version like 1.10.6" ;;
    KUBECTL_VERSION) [[ "$value" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || echo "$name=$value is not a release version like v1.34.2" ;;
    *_SHA256_*) [[ "$value" =~ ^[0-9a-f]{64}$ ]] || echo "$name=$value is not a SHA-256 (64 lower-case hex digits)" ;;
    *) echo "$name: unknown pin" ;;
  esac
}

# Debian architecture of the image being built: amd64 or arm64.
target_arch() {
  local a="${TARGETARCH:-$(dpkg --print-architecture)}"
  case "$a" in
    amd64 | arm64) echo "$a" ;;
    *) die "unsupported architecture \"$a\" (amd64 or arm64)" ;;
  esac
}

# verify FILE SHA256 [WHAT]: fails hard unless FILE's SHA-256 is exactly the pinned one.
verify() {
  local file="$1" sha="$2" what="${3:-$1}" problem
  problem="$(pin_problem X_SHA256_X "$sha")"
  [ -z "$problem" ] || die "bad expected checksum \"$sha\" (64 lower-case hex digits)"
  [ -f "$file" ] || die "no such file: $file"
  if ! echo "$sha  $file" | sha256sum --check --strict --status -; then
    die "CHECKSUM MISMATCH for $what: expected $sha, got $(sha256sum "$file" | cut -d' ' -f1) — refusing to install"
  fi
  echo "install-tools: verified $what sha256:$sha" >&2
}

# fetch URL DEST SHA256: downloads over HTTPS only, then verifies (see verify).
fetch() {
  local url="$1" dest="$2" sha="$3"
  curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 --retry 3 -o "$dest" "$url" ||
    die "download failed: $url"
  verify "$dest" "$sha" "$(basename "$url")"
}

cmd_install() {
  [ "$(id -u)" = 0 ] || die "install runs as root (in the Dockerfile)"
  local pin value problem arch upper tmp tool problems=()
  for pin in "${PIN_NAMES[@]}"; do
    value="${!pin:-}"
    [ -n "$value" ] || { problems+=("$pin is not set (an ARG of the Dockerfile)"); continue; }
    problem="$(pin_problem "$pin" "$value")"
    if [ -n "$problem" ]; then problems+=("$problem"); fi
  done
  [ ${#problems[@]} -eq 0 ] || die "bad pins: ${problems[*]}"
  arch="$(target_arch)"
  upper="$(echo "$arch" | tr '[:lower:]' '[:upper:]')"
  local tofu_sha_var="OPENTOFU_SHA256_$upper" kubectl_sha_var="KUBECTL_SHA256_$upper"

  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${RUNTIME_PACKAGES[@]}" "${BUILD_ONLY_PACKAGES[@]}" >/dev/null

  tmp="$(mktemp -d)"
  fetch "https://github.com/opentofu/opentofu/releases/download/v${OPENTOFU_VERSION}/tofu_${OPENTOFU_VERSION}_linux_${arch}.zip" \
    "$tmp/tofu.zip" "${!tofu_sha_var}"
  unzip -q "$tmp/tofu.zip" tofu -d "$tmp"
  install -m 0755 "$tmp/tofu" /usr/local/bin/tofu
  fetch "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl" "$tmp/kubectl" "${!kubectl_sha_var}"
  install -m 0755 "$tmp/kubectl" /usr/local/bin/kubectl
  rm -rf "$tmp"

  apt-get purge -y -qq --auto-remove "${BUILD_ONLY_PACKAGES[@]}" >/dev/null
  rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb

  # The non-root user. The Node.js image ships `node` (UID/GID 1000, the usual first
  # desktop user): renamed to `platform`, so a host user 1000 maps onto it without
  # nss_wrapper (the entrypoint covers every other UID).
  if id node >/dev/null 2>&1; then
    groupmod -n platform node
    usermod -l platform -d /home/platform -m -s /bin/bash node
  else
    useradd -m -u 1000 -U -d /home/platform -s /bin/bash platform
  fi
  # The workspace the launcher mounts into: defaults in the image, state dirs writable.
  install -d -o platform -g platform -m 0700 /platform/secrets /platform/.platform
  install -d -o platform -g platform -m 0755 /home/platform

  # Smoke test: every tool runs (fails the build otherwise).
  tofu version >/dev/null || die "tofu does not run"
  kubectl version --client >/dev/null || die "kubectl does not run"
  ssh -V 2>/dev/null || die "ssh does not run"
  for tool in git jq tini; do "$tool" --version >/dev/null || die "$tool does not run"; done
  ls /usr/lib/*-linux-gnu/libnss_wrapper.so >/dev/null || die "libnss_wrapper.so missing"
  echo "install-tools: OpenTofu $OPENTOFU_VERSION, kubectl $KUBECTL_VERSION ($arch), ${RUNTIME_PACKAGES[*]}" >&2
}

cmd_check() {
  local dockerfile="$1" failures=() pin value problem line pkg seen=" " f out
  [ -f "$dockerfile" ] || die "no Dockerfile at $dockerfile"

  # 1. the pins: defined once as ARG defaults, well-formed, no placeholders
  for pin in "${PIN_NAMES[@]}"; do
    line="$(grep -E "^[[:space:]]*ARG[[:space:]]+${pin}=" "$dockerfile" || true)"
    if [ -z "$line" ]; then failures+=("Dockerfile: ARG $pin=<value> is missing"); continue; fi
    [ "$(printf '%s\n' "$line" | wc -l)" -eq 1 ] || { failures+=("Dockerfile: ARG $pin is defined more than once"); continue; }
    value="${line#*=}"
    value="${value%%[[:space:]]*}"
    value="${value//\"/}"
    problem="$(pin_problem "$pin" "$value")"
    if [ -n "$problem" ]; then failures+=("Dockerfile: $problem"); fi
  done
  grep -q 'install-tools.sh' "$dockerfile" || failures+=("Dockerfile: does not run docker/install-tools.sh")

  # 2. the apt package list: well-formed, no duplicates, the essentials present, and known
  #    to apt when this host has package lists (Debian/Ubuntu; nothing is downloaded)
  for pkg in "${RUNTIME_PACKAGES[@]}" "${BUILD_ONLY_PACKAGES[@]}"; do
    [[ "$pkg" =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || failures+=("apt package name \"$pkg\" is malformed")
    if [[ "$seen" == *" $pkg "* ]]; then failures+=("apt package $pkg is listed twice"); fi
    seen+="$pkg "
  done
  for pkg in ca-certificates openssh-client git jq; do
    [[ " ${RUNTIME_PACKAGES[*]} " == *" $pkg "* ]] || failures+=("apt package $pkg must be in RUNTIME_PACKAGES")
  done
  if command -v apt-cache >/dev/null 2>&1 && compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    local known
    # one apt-cache call: "<pkg>:" then "  Candidate: <version>" for each package apt knows
    known="$(apt-cache policy "${RUNTIME_PACKAGES[@]}" "${BUILD_ONLY_PACKAGES[@]}" 2>/dev/null |
      awk '/^[^ ].*:$/ { p = substr($0, 1, length($0) - 1) } /^  Candidate:/ && $2 != "(none)" { print p }')"
    for pkg in "${RUNTIME_PACKAGES[@]}" "${BUILD_ONLY_PACKAGES[@]}"; do
      grep -qxF "$pkg" <<<"$known" || failures+=("apt has no installable package $pkg")
    done
  else
    echo "install-tools: no apt package lists on this host: package names checked for form only" >&2
  fi

  # 3. the shell scripts parse
  for f in "$ROOT/run.kube" "$ROOT/play.kube" "$HERE/entrypoint.sh" "$HERE/bashrc" "${BASH_SOURCE[0]}"; do
    [ -f "$f" ] || { failures+=("missing $f"); continue; }
    if ! out="$(bash -n "$f" 2>&1)"; then failures+=("$f: bash syntax error: ${out%%$'\n'*}"); fi
  done

  # 4. what the tests need on this host
  local have=()
  if command -v node >/dev/null 2>&1; then
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    [ "$major" -ge 20 ] || failures+=("Node.js $(node --version) is too old (20+)")
    have+=("node $(node --version)")
  else failures+=("node is not installed (Node.js 20+)"); fi
  local tf=""
  if command -v tofu >/dev/null 2>&1; then tf=tofu; elif command -v terraform >/dev/null 2>&1; then tf=terraform; fi
  if [ -n "$tf" ]; then
    out="$(CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$tf" version 2>&1)" || failures+=("$tf version failed: ${out%%$'\n'*}")
    have+=("${out%%$'\n'*}")
  else failures+=("neither tofu nor terraform is installed"); fi
  for pkg in ssh ssh-keygen ssh-agent jq git; do
    command -v "$pkg" >/dev/null 2>&1 || failures+=("$pkg is not installed")
  done
  command -v ssh >/dev/null 2>&1 && have+=("$(ssh -V 2>&1)")
  command -v jq >/dev/null 2>&1 && have+=("$(jq --version)")
  command -v git >/dev/null 2>&1 && have+=("$(git --version)")

  if [ ${#failures[@]} -gt 0 ]; then
    echo "install-tools: CHECK FAILED (${#failures[@]} problem(s)):" >&2
    printf '  - %s\n' "${failures[@]}" >&2
    exit 1
  fi
  echo "install-tools: check ok: pins in $(basename "$dockerfile"), ${#RUNTIME_PACKAGES[@]} apt packages; ${have[*]}" >&2
}

main() {
  local mode="" dockerfile="$ROOT/Dockerfile"
  while [ $# -gt 0 ]; do
    case "$1" in
      install) mode=install; shift ;;
      --check) mode=check; shift ;;
      --verify) [ $# -ge 3 ] || { echo "install-tools: --verify needs FILE SHA256" >&2; exit 2; }; verify "$2" "$3"; exit 0 ;;
      --dockerfile) [ $# -ge 2 ] || { echo "install-tools: --dockerfile needs a path" >&2; exit 2; }; dockerfile="$2"; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) echo "install-tools: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
  done
  case "$mode" in
    install) cmd_install ;;
    check) cmd_check "$dockerfile" ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
