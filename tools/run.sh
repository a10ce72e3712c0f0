#!/usr/bin/env bash
# run.sh - `make run`: initialise the embedded SQLite database named in
# etc/mailroom.conf (var/mailroom.db), then run mailroomd in the foreground
# on 127.0.0.1 (SMTP 2525, LMTP 2424).  Ctrl-C drains and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
conf=etc/mailroom.conf
./build/mailroomctl -c "$conf" init
cat <<EOT

mailroomd is starting on 127.0.0.1 (SMTP port 2525, LMTP port 2424).
Send it a mail from another terminal, for example:

  swaks --server 127.0.0.1:2525 --from jane@customer.test --to support@acme.test \\
        --header "Subject: Printer on fire"
  ./build/mailroomctl -c $conf deliver --to support@acme.test < docs/sample-message.eml

and look at what it made of it:

  ./build/mailroomctl -c $conf ticket list
  ./build/mailroomctl -c $conf timeline customer.test

EOT
exec ./build/mailroomd -c "$conf" --foreground
