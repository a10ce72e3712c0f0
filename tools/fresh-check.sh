#!/usr/bin/env bash
# fresh-check.sh - the README's test command on a fresh Debian 12 machine.
#
# Usage: tools/fresh-check.sh [--worktree] [--cache] [--clean] [--help]
#        (make fresh-check runs it without options; as root)
#
# 1. builds a minimal Debian 12 root with debootstrap (--variant=minbase,
#    from the host's Debian mirror; debootstrap is apt-get installed on the
#    host when missing) into the git-ignored var/fresh-check/root;
# 2. gives it the apt sources of a plain Debian 12 install (bookworm,
#    bookworm-updates, bookworm-security; main), a policy-rc.d that keeps
#    packages from starting services, the host's resolv.conf and the host's
#    local CA certificates (/usr/local/share/ca-certificates: a TLS-
#    intercepting proxy's, say; MR_FRESH_HOST_CA=0 leaves them out);
# 3. puts a clean clone of the committed HEAD at /root/mailroom in it (git
#    runs on the host: the root needs no git);
# 4. installs exactly one package into it: make (the README's command starts
#    with make), and lists what the root holds before the command;
# 5. runs the README's test command, as root like CI (CI=true, an empty
#    environment, no stdin): make deps, then, if it passed, make test.
#
# Each phase is timed; the exit status is the test command's.  Everything
# the phases print is kept in var/fresh-check/log.  The root stays after the
# run, to look into; the next run (or --clean) removes it.
#
# Mounts: /proc (proc), /sys (sysfs, read-only) and a /dev of its own (a
# tmpfs with null, zero, full, random, urandom, tty; a new devpts instance at
# /dev/pts; a tmpfs at /dev/shm) - the host's /dev is never bind-mounted.
# They are made in a private mount namespace (unshare), so the host never
# sees them and they end with the check, even when it is killed; a trap also
# unmounts them on every exit (lazily if busy) after ending the processes
# left running in the root.  Before anything is removed, the script checks
# (in /proc/self/mountinfo) that nothing is mounted under the root, and
# refuses otherwise.  The network (loopback included) is the host's.
#
# Options (or environment variables):
#   --worktree  (MR_FRESH_WORKTREE=1)  test the working tree instead of HEAD:
#               a commit of it (tracked changes and untracked, not ignored
#               files) is made with a temporary index - the working tree, the
#               index and the refs are not touched - and checked out in the
#               clone.  Without it, uncommitted changes are NOT tested, and
#               the script says so.
#   --cache     (MR_FRESH_CACHE=1)  reuse a tarball of the pristine debootstrap
#               output, var/fresh-check/cache/bookworm-minbase.tar, made on
#               the first cached run (saves about 2 minutes; its packages may
#               be older than the mirror's).  Never the default.
#   --clean     remove var/fresh-check/root (and the cache) and exit.
#   MR_FRESH_MIRROR, MR_FRESH_SECURITY_MIRROR  override the mirrors, which are
#               otherwise the URIs of /etc/apt/sources.list.d/debian.sources.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true

SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/.."
TOP=$(pwd)
FC=$TOP/var/fresh-check
ROOT=$FC/root
LOG=$FC/log
CACHE=$FC/cache/bookworm-minbase.tar
SRC=/root/mailroom
SUITE=bookworm
CHROOT_ENV=(/usr/bin/env -i HOME=/root
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
            LANG=C.UTF-8 CI=true)

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"; }
die() { echo "fresh-check: $*" >&2; exit 2; }
now() { date +%s; }
dur() { local s=$1; printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# ---------------------------------------------------------------- mounts --
# The mount points at or under $1, deepest first, from this namespace's
# /proc/self/mountinfo (field 5; the paths are checked to need no escapes).
mounts_under() {
  awk -v r="$1" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo |
    sort -r
}

# The processes whose root is the chroot: only this script starts them.
procs_in_root() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [ "$r" = "$ROOT" ] && echo "${p#/proc/}"
  done
  return 0
}

end_procs_in_root() {
  local pids i
  pids=$(procs_in_root)
  [ -n "$pids" ] || return 0
  echo "fresh-check: ending the processes left in the root: $(echo $pids)"
  kill -TERM $pids 2>/dev/null || true
  for i in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(procs_in_root); [ -n "$pids" ] || return 0
    sleep 0.5
  done
  kill -KILL $pids 2>/dev/null || true
  sleep 0.5
}

umount_root() {
  local m i
  for i in 1 2 3; do
    m=$(mounts_under "$ROOT")
    [ -n "$m" ] || return 0
    for m in $m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
  done
  m=$(mounts_under "$ROOT")
  [ -z "$m" ] || { echo "fresh-check: STILL MOUNTED under $ROOT: $(echo $m)" >&2; return 1; }
}

# Remove the root: only when nothing is mounted in it, and never across a
# file system boundary.
remove_root() {
  case "$ROOT" in */var/fresh-check/root) ;; *) die "bad root folder: $ROOT" ;; esac
  [ -e "$ROOT" ] || return 0
  end_procs_in_root
  umount_root || die "refusing to remove $ROOT: something is still mounted in it"
  [ -z "$(mounts_under "$ROOT")" ] || die "refusing to remove $ROOT: mounted"
  rm -rf --one-file-system -- "$ROOT"
  [ ! -e "$ROOT" ] || die "could not remove $ROOT"
}

# ------------------------------------------------------- the inner stage --
# Runs in a private mount namespace: mount, make, the README's command.
inner() {
  local t d rc
  # Only as started by main: in the private mount namespace that unshare
  # made (not the one main runs in), while main holds the lock.
  [ -n "${MR_FRESH_OUTER_NS:-}" ] &&
    [ "$(readlink /proc/self/ns/mnt)" != "$MR_FRESH_OUTER_NS" ] ||
    die "--inner is internal: it runs only in the private mount namespace main makes"
  ! flock -n "$FC/lock" true 2>/dev/null || die "--inner is internal: no fresh-check holds the lock"
  trap inner_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP

  mount -t proc -o nosuid,nodev,noexec proc "$ROOT/proc"
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$ROOT/sys"
  d=$ROOT/dev
  mount -t tmpfs -o nosuid,mode=0755,size=16m fresh-check-dev "$d"
  mknod -m 0666 "$d/null" c 1 3
  mknod -m 0666 "$d/zero" c 1 5
  mknod -m 0666 "$d/full" c 1 7
  mknod -m 0666 "$d/random" c 1 8
  mknod -m 0666 "$d/urandom" c 1 9
  mknod -m 0666 "$d/tty" c 5 0
  ln -s /proc/self/fd "$d/fd"
  ln -s /proc/self/fd/0 "$d/stdin"
  ln -s /proc/self/fd/1 "$d/stdout"
  ln -s /proc/self/fd/2 "$d/stderr"
  ln -s pts/ptmx "$d/ptmx"
  mkdir -m 0755 "$d/pts"
  mkdir -m 1777 "$d/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$d/pts"
  mount -t tmpfs -o nosuid,nodev,mode=1777 fresh-check-shm "$d/shm"
  echo "fresh-check: mounted in the root:"
  mounts_under "$ROOT" | sort | sed "s|^$ROOT|  |"

  # What a user following the README must have had: make (and git, to
  # clone, which ran on the host).
  t=$(now)
  echo "fresh-check: installing make"
  chroot "$ROOT" "${CHROOT_ENV[@]}" DEBIAN_FRONTEND=noninteractive \
    apt-get update -qq </dev/null
  chroot "$ROOT" "${CHROOT_ENV[@]}" DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends make </dev/null |
    sed '/^(Reading database/d'
  echo "fresh-check: make installed in $(dur $(( $(now) - t )))"
  echo "fresh-check: the root holds $(chroot "$ROOT" "${CHROOT_ENV[@]}" dpkg-query -W -f='${db:Status-Abbrev}\n' | grep -c '^ii') packages before the command:"
  chroot "$ROOT" "${CHROOT_ENV[@]}" dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' |
    awk '$1 == "ii" { print $2 }' | tr '\n' ' ' | fold -s -w 76 | sed 's/^/  /'
  echo

  # The README's command, `make deps && make test`, as two chroot calls to
  # time them apart (make test runs only when make deps passed).
  t=$(now)
  echo "fresh-check: === make deps ==="
  rc=0
  chroot "$ROOT" "${CHROOT_ENV[@]}" bash -c "cd $SRC && make deps" </dev/null || rc=$?
  echo "fresh-check: TIME deps $(dur $(( $(now) - t ))) (exit $rc)"
  if [ "$rc" -eq 0 ]; then
    t=$(now)
    echo "fresh-check: === make test ==="
    chroot "$ROOT" "${CHROOT_ENV[@]}" bash -c "cd $SRC && make test" </dev/null || rc=$?
    echo "fresh-check: TIME test $(dur $(( $(now) - t ))) (exit $rc)"
  fi
  exit "$rc"
}

inner_exit() {
  local rc=$?
  set +e
  trap '' INT TERM HUP PIPE
  end_procs_in_root
  umount_root
  exit "$rc"
}

# ------------------------------------------------------- the outer stage --
outer_exit() {
  local rc=$?
  set +e
  trap '' INT TERM HUP PIPE
  # The mounts were made in a private namespace; this is a safety net.
  end_procs_in_root
  umount_root
  [ -n "${WT_INDEX:-}" ] && rm -f "$WT_INDEX"
  exit "$rc"
}

# The URIs of the host's deb822 stanza whose Suites hold $1.
host_mirror() {
  awk -v s="$1" '
    /^[ \t]*$/ { if (hit && uri) { print uri; exit } hit = 0; uri = ""; next }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) hit = 1 }
    END { if (hit && uri) print uri }' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
    head -1 || true
}

main() {
  local worktree=${MR_FRESH_WORKTREE:-0} cache=${MR_FRESH_CACHE:-0}
  while [ $# -gt 0 ]; do
    case "$1" in
      -h|--help) usage; exit 0 ;;
      --worktree) worktree=1 ;;
      --cache) cache=1 ;;
      --clean) CLEAN=1 ;;
      --inner) shift; inner "$@" ;;
      *) usage >&2; exit 2 ;;
    esac
    shift
  done
  [ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mount)"
  case "$TOP" in *[[:space:]\\]*) die "the project path must not hold spaces or backslashes: $TOP" ;; esac

  mkdir -p "$FC"
  exec 9>"$FC/lock"
  flock -n 9 || die "another fresh-check is running (lock $FC/lock)"
  trap outer_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP

  if [ "${CLEAN:-0}" = 1 ]; then
    remove_root; rm -f "$CACHE"; echo "fresh-check: removed $ROOT and $CACHE"; exit 0
  fi
  : >"$LOG"
  log() { echo "$*" | tee -a "$LOG"; }

  local t0 t mirror secmirror rev dirty
  t0=$(now)
  log "fresh-check: $(date -u '+%F %T UTC'), log in $LOG"

  # What is tested.
  git -C "$TOP" rev-parse --verify -q HEAD >/dev/null || die "no committed HEAD in $TOP"
  dirty=$(git -C "$TOP" status --porcelain --untracked-files=normal)
  if [ "$worktree" = 1 ]; then
    WT_INDEX=$(mktemp "$FC/index.XXXXXX")
    cp "$(git -C "$TOP" rev-parse --git-path index)" "$WT_INDEX"
    GIT_INDEX_FILE=$WT_INDEX git -C "$TOP" add -A
    rev=$(GIT_AUTHOR_NAME=fresh-check GIT_AUTHOR_EMAIL=fresh-check@localhost \
          GIT_COMMITTER_NAME=fresh-check GIT_COMMITTER_EMAIL=fresh-check@localhost \
          git -C "$TOP" commit-tree -p HEAD -m "fresh-check: the working tree" \
            "$(GIT_INDEX_FILE=$WT_INDEX git -C "$TOP" write-tree)")
    rm -f "$WT_INDEX"; WT_INDEX=
    log "fresh-check: testing the WORKING TREE (HEAD $(git -C "$TOP" rev-parse --short HEAD) + these changes, as commit ${rev:0:12}):"
    [ -z "$dirty" ] || echo "$dirty" | sed 's/^/    /' | tee -a "$LOG"
  else
    rev=$(git -C "$TOP" rev-parse HEAD)
    log "fresh-check: testing the committed HEAD $(git -C "$TOP" log -1 --format='%h %s')"
    if [ -n "$dirty" ]; then
      { echo "fresh-check: !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        echo "fresh-check: !!! the working tree has changes that are NOT tested:"
        echo "$dirty" | sed 's/^/fresh-check: !!!     /'
        echo "fresh-check: !!! commit them, or run with --worktree (MR_FRESH_WORKTREE=1)"
        echo "fresh-check: !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
      } | tee -a "$LOG" >&2
    fi
  fi

  if ! command -v debootstrap >/dev/null; then
    log "fresh-check: installing debootstrap on the host"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
  fi
  mirror=${MR_FRESH_MIRROR:-$(host_mirror "$SUITE")}
  mirror=${mirror:-http://deb.debian.org/debian}
  secmirror=${MR_FRESH_SECURITY_MIRROR:-$(host_mirror "$SUITE-security")}
  secmirror=${secmirror:-http://deb.debian.org/debian-security}

  # 1. The root.
  t=$(now)
  remove_root
  if [ "$cache" = 1 ] && [ -f "$CACHE" ]; then
    log "fresh-check: unpacking the cached debootstrap output $CACHE"
    mkdir -p "$ROOT"
    tar -C "$ROOT" --numeric-owner -xpf "$CACHE"
  else
    log "fresh-check: debootstrap --variant=minbase $SUITE $ROOT $mirror"
    if ! debootstrap --variant=minbase "$SUITE" "$ROOT" "$mirror" >>"$LOG" 2>&1; then
      tail -20 "$LOG"; die "debootstrap failed (see $LOG)"
    fi
    if [ "$cache" = 1 ]; then
      mkdir -p "$(dirname "$CACHE")"
      tar -C "$ROOT" --one-file-system --numeric-owner -cpf "$CACHE.tmp" . && mv "$CACHE.tmp" "$CACHE"
      log "fresh-check: cached the debootstrap output in $CACHE"
    fi
  fi
  log "fresh-check: TIME debootstrap $(dur $(( $(now) - t )))"

  # 2. A plain Debian 12 install's apt sources; no services; names.
  rm -f "$ROOT/etc/apt/sources.list"
  cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $secmirror
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf '#!/bin/sh\n# fresh-check: no service starts in the chroot\nexit 101\n' \
    >"$ROOT/usr/sbin/policy-rc.d"
  chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
  rm -f "$ROOT/etc/resolv.conf"
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
  # The host's local CA certificates, in Debian's place for them: like
  # resolv.conf, the network's, not the project's (here a TLS-intercepting
  # proxy's CA, without which npm cannot reach its registry).  They are
  # trusted once ca-certificates is installed (by make deps).
  if [ "${MR_FRESH_HOST_CA:-1}" = 1 ] && [ -d /usr/local/share/ca-certificates ]; then
    local cas
    cas=$(cd /usr/local/share/ca-certificates && find . -name '*.crt' | sed 's|^\./||' | sort)
    if [ -n "$cas" ]; then
      mkdir -p "$ROOT/usr/local/share/ca-certificates"
      (cd /usr/local/share/ca-certificates && cp -L --parents $cas "$ROOT/usr/local/share/ca-certificates/")
      log "fresh-check: the host's local CA certificates (MR_FRESH_HOST_CA=0: not): $(echo $cas)"
    fi
  fi

  # 3. A clean clone (git on the host).
  git clone -q --no-hardlinks "$TOP" "$ROOT$SRC"
  git -C "$ROOT$SRC" fetch -q origin "$rev"
  git -C "$ROOT$SRC" -c advice.detachedHead=false checkout -q "$rev"
  git -C "$ROOT$SRC" remote remove origin
  log "fresh-check: cloned $(git -C "$ROOT$SRC" log -1 --format='%h %s') into $SRC"

  # 4, 5. make, then the README's command, in a private mount namespace.
  local rc=0
  MR_FRESH_OUTER_NS=$(readlink /proc/self/ns/mnt) unshare --mount --propagation private -- "$SELF" --inner 9>&- 2>&1 |
    (trap '' INT; tee -a "$LOG") || rc=${PIPESTATUS[0]}
  log "fresh-check: TIME total $(dur $(( $(now) - t0 )))"
  log "fresh-check: times: $(sed -n 's/^fresh-check: TIME \([a-z]* [0-9ms]*\).*/\1/p' "$LOG" | paste -sd, | sed 's/,/, /g')"
  if [ "$rc" -eq 0 ]; then
    log "fresh-check: PASSED: make deps && make test on a fresh Debian 12 ($(git -C "$ROOT$SRC" rev-parse --short HEAD))"
  else
    log "fresh-check: FAILED (exit $rc); the log is $LOG"
  fi
  exit "$rc"
}

main "$@"
