#!/usr/bin/env bash
# bench-smtp.sh - `make bench`: mailroomd against Postfix's smtp-sink, both
# driven by Postfix's smtp-source on loopback: 16 sessions, N messages of
# 4 KB (default 20,000), one connection per message and 100 messages per
# connection.  smtp-sink stores nothing (the protocol limit); mailroomd
# parses, routes and stores every message durably (synchronous=full) and
# answers after COMMIT.  Prints messages/s, the ratio, mailroomd's peak RSS,
# and checks that the database holds exactly the messages acknowledged.
# Figures, not a test: it fails only when something is wrong (lost mail).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${MR_BENCH_MESSAGES:-20000}
SESSIONS=16
SIZE=4096
BUILD=${MR_BUILD:-build}
SINK=/usr/sbin/smtp-sink
SOURCE=/usr/sbin/smtp-source
for tool in "$SINK" "$SOURCE"; do
  [ -x "$tool" ] || { echo "bench: $tool missing: run make deps" >&2; exit 1; }
done

work=$(mktemp -d /tmp/mr-bench.XXXXXX)
chmod 0755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# run_source MODE PORT: sends N messages; prints the seconds taken.
run_source() {
  local mode=$1 port=$2 start end
  start=$(now)
  if [ "$mode" = per-connection ]; then
    "$SOURCE" -s "$SESSIONS" -m "$N" -l "$SIZE" -f bench@customer.test -t crm@acme.test \
      "127.0.0.1:$port" 2>"$work/source.err"
  else
    seq $((N / 100)) | xargs -P "$SESSIONS" -I{} "$SOURCE" -d -s 1 -m 100 -l "$SIZE" \
      -f bench@customer.test -t crm@acme.test "127.0.0.1:$port" 2>"$work/source.err"
  fi
  end=$(now)
  if [ -s "$work/source.err" ]; then
    echo "bench: smtp-source reported errors:" >&2; head -5 "$work/source.err" >&2; exit 1
  fi
  echo "$end - $start" | bc -l
}

rate() { echo "$N / $1" | bc -l | xargs printf '%.0f'; }

declare -A RESULT
echo "mailroom bench: $N messages of $SIZE bytes, $SESSIONS sessions, $(nproc) cores"

# 1. smtp-sink: the protocol limit.
for mode in per-connection 100-per-connection; do
  port=$(free_port)
  "$SINK" -u nobody -c "127.0.0.1:$port" 1024 >/dev/null 2>&1 &
  pids+=($!)
  sleep 0.3
  t=$(run_source "$mode" "$port")
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  RESULT[sink-$mode]=$(rate "$t")
  printf '  smtp-sink  %-20s %8s msgs/s  (%.2f s)\n' "$mode" "${RESULT[sink-$mode]}" "$t"
done

# 2. mailroomd, durable, each in a fresh database.
for mode in per-connection 100-per-connection; do
  d="$work/$mode"; mkdir -p "$d"
  port=$(free_port); lport=$(free_port)
  sed -e "s|^database = .*|database = \"$d/mailroom.db\";|" \
      -e "s|^smtp = .*|smtp = { listen = [ \"127.0.0.1:$port\" ]; };|" \
      -e "s|^lmtp = .*|lmtp = { listen = [ \"127.0.0.1:$lport\" ]; };|" \
      etc/mailroom.conf >"$d/mailroom.conf"
  "$BUILD/mailroomd" -c "$d/mailroom.conf" --foreground 2>"$d/log" &
  pid=$!; pids+=($pid)
  for _ in $(seq 50); do grep -q listening "$d/log" && break; sleep 0.1; done
  grep -q listening "$d/log" || { echo "bench: mailroomd did not start:" >&2; cat "$d/log" >&2; exit 1; }
  t=$(run_source "$mode" "$port")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid"
  stored=$(sqlite3 "$d/mailroom.db" 'SELECT count(*) FROM message')
  deliveries=$(sqlite3 "$d/mailroom.db" 'SELECT count(*) FROM delivery')
  RESULT[mr-$mode]=$(rate "$t")
  printf '  mailroomd  %-20s %8s msgs/s  (%.2f s)  peak RSS %d MB  stored %s\n' "$mode" \
    "${RESULT[mr-$mode]}" "$t" $((rss / 1024)) "$stored"
  if [ "$stored" != "$N" ] || [ "$deliveries" != "$N" ]; then
    echo "bench: acknowledged $N, but the database holds $stored messages ($deliveries deliveries)" >&2
    exit 1
  fi
done

echo "ratio mailroomd / smtp-sink:"
for mode in per-connection 100-per-connection; do
  printf '  %-20s %5.1f %%\n' "$mode" \
    "$(echo "100 * ${RESULT[mr-$mode]} / ${RESULT[sink-$mode]}" | bc -l)"
done
