#!/usr/bin/env bash
# entrypoint.sh — the build container's entry (run under tini, see the Dockerfile).
#
#   (no arguments)   an interactive shell: docker/bashrc sets the prompt
#                    `[ENV@platform] (branch) $` and shows the AWS identity first
#   CMD ARGS...      runs CMD (the toolkit's commands are on PATH) and exits with its code
#
# The launcher runs the container as the host's UID/GID (`docker run -u`), so files in the
# mounted workspace stay the operator's. That UID may have no /etc/passwd entry, which
# breaks ssh ("No user exists for uid ...") and git; nss_wrapper (LD_PRELOAD, the
# libnss-wrapper package, https://cwrap.org/nss_wrapper.html) supplies one named
# `platform` with HOME as its home directory, without making /etc/passwd writable.
set -euo pipefail

# HOME must be writable (kubeconfig, ssh known_hosts, shell history): the launcher mounts
# one; with a plain `docker run -u N` that cannot write the image's home, use a fresh one.
if [ ! -d "${HOME:-}" ] || [ ! -w "${HOME:-}" ]; then
  HOME="$(mktemp -d /tmp/home.XXXXXX)"
  export HOME
fi

uid="$(id -u)"
gid="$(id -g)"
entry="$(getent passwd "$uid" || true)"
if [ "$uid" != 0 ] && { [ -z "$entry" ] || [ "$(echo "$entry" | cut -d: -f6)" != "$HOME" ]; }; then
  lib=""
  for f in /usr/lib/*-linux-gnu/libnss_wrapper.so; do
    if [ -e "$f" ]; then lib="$f" && break; fi
  done
  if [ -n "$lib" ]; then
    dir="$(mktemp -d /tmp/nss.XXXXXX)"
    # every other user as it is; this UID as `platform` (replacing the image's entry if any)
    awk -F: -v uid="$uid" '$3 != uid && $1 != "platform"' /etc/passwd >"$dir/passwd"
    echo "platform:x:$uid:$gid:kube-platform operator:$HOME:/bin/bash" >>"$dir/passwd"
    cp /etc/group "$dir/group"
    getent group "$gid" >/dev/null || echo "platform-host:x:$gid:" >>"$dir/group"
    export LD_PRELOAD="$lib" NSS_WRAPPER_PASSWD="$dir/passwd" NSS_WRAPPER_GROUP="$dir/group"
  fi
fi

if [ $# -eq 0 ]; then
  exec bash --rcfile /opt/kube-platform/docker/bashrc -i
fi
if ! command -v "$1" >/dev/null 2>&1; then
  # a mistyped command: name the toolkit's commands instead of exec's "not found" (127)
  scripts="$(dirname "$(command -v kube-platform 2>/dev/null || echo /opt/kube-platform/scripts/kube-platform)")"
  echo "kube-platform: unknown command: $1" >&2
  list=""
  for f in "$scripts"/*; do
    f="${f##*/}"
    [ "$f" = kube-platform ] || list="$list$f "
  done
  echo "hint: the toolkit's commands: $list(each takes --help)" >&2
  exit 2
fi
exec "$@"
