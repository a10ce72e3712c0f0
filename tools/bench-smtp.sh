#!/usr/bin/env bash
# bench-smtp.sh - `make bench`: mailroomd against Postfix's smtp-sink, both
# driven by Postfix's smtp-source on loopback: 16 sessions, N messages of
# 4 KB (default 20,000), one connection per message and 100 messages per
# connection.  smtp-sink stores nothing (the protocol limit); mailroomd
# parses, routes and stores every message durably (synchronous=full) and
# answers after COMMIT.
#
# The machine's speed drifts over minutes, so the two servers are measured
# in alternation: for each mode, ROUNDS rounds (MR_BENCH_ROUNDS, default 3)
# of smtp-sink then mailroomd.  Every figure is printed as it is taken;
# the summary gives the median rates, the median of the per-round ratios,
# and the CPU time per message (user + system of the server process over
# the run, all its threads: it drifts much less than a rate).
# mailroomd also reports its peak RSS, and the script checks that its
# database holds exactly the messages acknowledged.
# Figures, not a test: it fails only when something is wrong (lost mail,
# a server that did not start, smtp-source errors).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${MR_BENCH_MESSAGES:-20000}
ROUNDS=${MR_BENCH_ROUNDS:-3}
SESSIONS=16
SIZE=4096
BUILD=${MR_BUILD:-build}
SINK=/usr/sbin/smtp-sink
SOURCE=/usr/sbin/smtp-source
MODES=(per-connection 100-per-connection)
for tool in "$SINK" "$SOURCE"; do
  [ -x "$tool" ] || { echo "bench: $tool missing: run make deps" >&2; exit 1; }
done
if ! [[ $N =~ ^[1-9][0-9]*00$ ]]; then
  echo "bench: MR_BENCH_MESSAGES=$N: want a positive multiple of 100" >&2; exit 1
fi
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ ]]; then
  echo "bench: MR_BENCH_ROUNDS=$ROUNDS: want a positive number" >&2; exit 1
fi
TCK=$(getconf CLK_TCK)

work=$(mktemp -d /tmp/mr-bench.XXXXXX)
chmod 0755 "$work"
server=    # the pid of the server running now, if any
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

# cpu_ticks PID: user + system clock ticks of the process, all its threads
# (fields 14 and 15 of /proc/PID/stat; field 2 may hold blanks, so count
# from the ')' that ends it: utime is then the 12th field).
cpu_ticks() {
  local stat f
  stat=$(<"/proc/$1/stat")
  read -ra f <<<"${stat##*) }"
  echo $((f[11] + f[12]))
}

# listening PORT: whether a socket listens on 127.0.0.1:PORT (read from
# /proc/net/tcp, without connecting to it).
listening() {
  awk -v want="0100007F:$(printf '%04X' "$1")" \
    '$2 == want && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp
}

# run_source MODE PORT PID: sends N messages to the server PID listening on
# PORT; prints the seconds taken and the server's CPU ticks meanwhile.
run_source() {
  local mode=$1 port=$2 pid=$3 cpu0 cpu1 start end
  cpu0=$(cpu_ticks "$pid")
  start=$(now)
  if [ "$mode" = per-connection ]; then
    "$SOURCE" -s "$SESSIONS" -m "$N" -l "$SIZE" -f bench@customer.test -t crm@acme.test \
      "127.0.0.1:$port" 2>"$work/source.err"
  else
    seq $((N / 100)) | xargs -P "$SESSIONS" -I{} "$SOURCE" -d -s 1 -m 100 -l "$SIZE" \
      -f bench@customer.test -t crm@acme.test "127.0.0.1:$port" 2>"$work/source.err"
  fi
  end=$(now)
  cpu1=$(cpu_ticks "$pid")
  if [ -s "$work/source.err" ]; then
    echo "bench: smtp-source reported errors:" >&2; head -5 "$work/source.err" >&2; exit 1
  fi
  echo "$(echo "$end - $start" | bc -l) $((cpu1 - cpu0))"
}

rate() { awk -v n="$N" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
us_per_msg() { awk -v n="$N" -v c="$1" -v tck="$TCK" 'BEGIN { printf "%.1f", c * 1e6 / tck / n }'; }
median() {
  printf '%s\n' "$@" | sort -g |
    awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# run_sink MODE: one smtp-sink measurement; sets t, cpu.
run_sink() {
  local mode=$1 port res
  port=$(free_port)
  # As root, -u is required: smtp-sink binds, then setuid()s itself in the
  # same process (it does not fork), so $! is the process that serves.
  "$SINK" -u nobody -c "127.0.0.1:$port" 1024 >/dev/null 2>"$work/sink.err" &
  server=$!
  for _ in $(seq 50); do listening "$port" && break; sleep 0.1; done
  if ! listening "$port" || ! kill -0 "$server" 2>/dev/null; then
    echo "bench: smtp-sink did not start:" >&2; cat "$work/sink.err" >&2; exit 1
  fi
  res=$(run_source "$mode" "$port" "$server")
  read -r t cpu <<<"$res"
  kill "$server"; wait "$server" 2>/dev/null || true
  server=
}

# run_mailroomd MODE ROUND: one mailroomd measurement in a fresh database;
# sets t, cpu, rss (kB), stored.
run_mailroomd() {
  local mode=$1 d="$work/$1-$2" port lport res deliveries
  mkdir -p "$d"
  port=$(free_port); lport=$(free_port)
  sed -e "s|^database = .*|database = \"$d/mailroom.db\";|" \
      -e "s|^smtp = .*|smtp = { listen = [ \"127.0.0.1:$port\" ]; };|" \
      -e "s|^lmtp = .*|lmtp = { listen = [ \"127.0.0.1:$lport\" ]; };|" \
      etc/mailroom.conf >"$d/mailroom.conf"
  "$BUILD/mailroomd" -c "$d/mailroom.conf" --foreground 2>"$d/log" &
  server=$!
  for _ in $(seq 50); do grep -q listening "$d/log" && break; sleep 0.1; done
  grep -q listening "$d/log" || { echo "bench: mailroomd did not start:" >&2; cat "$d/log" >&2; exit 1; }
  res=$(run_source "$mode" "$port" "$server")
  read -r t cpu <<<"$res"
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
  kill -TERM "$server"
  if ! wait "$server"; then
    echo "bench: mailroomd did not exit cleanly:" >&2; tail -5 "$d/log" >&2; exit 1
  fi
  server=
  stored=$(sqlite3 "$d/mailroom.db" 'SELECT count(*) FROM message')
  deliveries=$(sqlite3 "$d/mailroom.db" 'SELECT count(*) FROM delivery')
  if [ "$stored" != "$N" ] || [ "$deliveries" != "$N" ]; then
    echo "bench: acknowledged $N, but the database holds $stored messages ($deliveries deliveries)" >&2
    exit 1
  fi
  rm -rf "$d" # keep /tmp small over the rounds
}

echo "mailroom bench: $N messages of $SIZE bytes, $SESSIONS sessions, $(nproc) cores;" \
  "per mode, $ROUNDS round(s) of smtp-sink then mailroomd"
row='%5s  %-9s  %-18s  %7s  %7s  %10s  %8s  %6s\n'
# shellcheck disable=SC2059 # the format is the table's
printf "$row" round server mode msgs/s seconds "CPU µs/msg" "peak RSS" stored

declare -A SUMMARY
for mode in "${MODES[@]}"; do
  sink_rate=(); mr_rate=(); rate_ratio=(); sink_cpu=(); mr_cpu=()
  for round in $(seq "$ROUNDS"); do
    run_sink "$mode"
    sink_rate+=("$(rate "$t")"); sink_cpu+=("$(us_per_msg "$cpu")")
    # shellcheck disable=SC2059
    printf "$row" "$round" smtp-sink "$mode" "${sink_rate[-1]}" "$(printf '%.2f' "$t")" \
      "${sink_cpu[-1]}" "" "" | sed 's/ *$//'

    run_mailroomd "$mode" "$round"
    mr_rate+=("$(rate "$t")"); mr_cpu+=("$(us_per_msg "$cpu")")
    rate_ratio+=("$(awk -v m="${mr_rate[-1]}" -v s="${sink_rate[-1]}" 'BEGIN { print 100 * m / s }')")
    # shellcheck disable=SC2059
    printf "$row" "$round" mailroomd "$mode" "${mr_rate[-1]}" "$(printf '%.2f' "$t")" \
      "${mr_cpu[-1]}" "$((rss / 1024)) MB" "$stored"
  done
  sc=$(median "${sink_cpu[@]}"); mc=$(median "${mr_cpu[@]}")
  SUMMARY[$mode]=$(printf '%-18s  %7.0f  %11.0f  %8.1f %%  %7.1f  %12.1f  %7.2f x' "$mode" \
    "$(median "${sink_rate[@]}")" "$(median "${mr_rate[@]}")" "$(median "${rate_ratio[@]}")" \
    "$sc" "$mc" "$(awk -v m="$mc" -v s="$sc" 'BEGIN { print (s > 0) ? m / s : 0 }')")
done

echo
echo "medians over $ROUNDS round(s) (rate ratio: median of the per-round mailroomd/smtp-sink;"
echo "CPU: user+system µs per message; CPU ratio: median mailroomd µs / median smtp-sink µs)"
printf '%-18s  %7s  %11s  %10s  %7s  %12s  %9s\n' mode "sink/s" "mailroomd/s" "rate ratio" \
  "sink µs" "mailroomd µs" "CPU ratio"
for mode in "${MODES[@]}"; do echo "${SUMMARY[$mode]}"; done
