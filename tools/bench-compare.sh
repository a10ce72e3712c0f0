#!/usr/bin/env bash
# bench-compare.sh - `make bench-compare BASE=<git rev>` (issue 21): the CPU
# per message of mailroomd built from BASE ("before") against this tree's
# build ("after", with any uncommitted changes), measured by
# tools/bench-storage.py in one run, interleaved (MR_BENCH_BUILDS: each
# configuration once per build and round, the builds' order turning from
# round to round), on SQLite and on PostgreSQL.
#
#   tools/bench-compare.sh REV [AFTER_BUILD_DIR]     (default: build)
#
# BASE is checked out, detached, in a git worktree at var/bench-base
# (git-ignored) and built there with its own Makefile (make -j2
# BUILD=build: the default goal).  The worktree stays for the next run: at
# the same commit, untouched, only `make` runs again (nothing to do).  At
# another commit, modified, or not a worktree of this repository (a stale
# folder, a worktree whose registration is gone), it is removed and made
# anew.  `git worktree remove var/bench-base` (or rm -rf, then git worktree
# prune) removes it by hand.
#
# The Makefile builds this tree first.  Variables given to make on its
# command line (CFLAGS=..., say) reach both builds, through the
# environment; the knobs of bench-storage.py (MR_BENCH_MESSAGES,
# MR_BENCH_ROUNDS, default 4 here, MR_BENCH_CONFIGS) pass through as well.
# One run at a time per tree: var/bench-base is not locked.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bench-compare: $*" >&2; exit 1; }

if [ $# -lt 1 ] || [ -z "$1" ]; then die "usage: $0 <git rev> [build dir of this tree]"; fi
base=$1
after=${2:-build}
case $after in /*) ;; *) after=$PWD/$after ;; esac
dir=var/bench-base

rev=$(git rev-parse --verify --quiet "$base^{commit}") \
  || die "$base: not a commit of this repository"
if ! [ -x "$after/mailroomd" ] || ! [ -x "$after/mailroomctl" ]; then
  die "$after: no mailroomd or mailroomctl (make)"
fi

# --- the worktree of BASE --------------------------------------------------------
mkdir -p var
git worktree prune        # forget worktrees whose folder is gone
if [ -e "$dir" ]; then
  why=
  top=$(git -C "$dir" rev-parse --show-toplevel 2>/dev/null || true)
  if [ "$top" != "$(cd "$dir" && pwd -P)" ]; then
    why="not a git worktree"
  else
    have=$(git -C "$dir" rev-parse HEAD)
    if [ "$have" != "$rev" ]; then
      why="at $(git rev-parse --short "$have"), not $(git rev-parse --short "$rev")"
    elif [ -n "$(git -C "$dir" status --porcelain --untracked-files=no)" ]; then
      why="modified"
    fi
  fi
  if [ -n "$why" ]; then
    echo "bench-compare: $dir: $why; removing it"
    git worktree remove --force "$dir" 2>/dev/null || rm -rf "$dir"
    git worktree prune
  fi
fi
if [ ! -e "$dir" ]; then
  git worktree add --detach "$dir" "$rev"
fi

# Its own Makefile, on its own: no jobserver or flags of the make that runs
# this script (command-line variables are in the environment anyway).
echo "bench-compare: building $(git rev-parse --short "$rev") in $dir/build"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$dir" -j2 BUILD=build
if ! [ -x "$dir/build/mailroomd" ] || ! [ -x "$dir/build/mailroomctl" ]; then
  die "$dir/build: no mailroomd or mailroomctl after make"
fi

# --- the benchmark ---------------------------------------------------------------
dirty=
[ -z "$(git status --porcelain --untracked-files=no)" ] || dirty=" (+ uncommitted changes)"
echo "before: $(git log -1 --format='%h %s' "$rev" | cut -c1-100)"
echo "        $PWD/$dir/build"
echo "after:  this tree: $(git log -1 --format='%h %s' HEAD | cut -c1-80)$dirty"
echo "        $after"
if [ "$rev" = "$(git rev-parse HEAD)" ] && [ -z "$dirty" ]; then
  echo "bench-compare: BASE is HEAD and the tree is clean: an A/A run" \
       "(the noise between two identical builds)"
fi
MR_BENCH_BUILDS="before=$PWD/$dir/build,after=$after" exec python3 tools/bench-storage.py
