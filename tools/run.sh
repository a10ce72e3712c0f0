#!/usr/bin/env bash
# run.sh - `make run`: initialise the embedded SQLite database named in
# etc/mailroom.conf (var/mailroom.db), deliver a sample customer mail to the
# support address and show what mailroom made of it.
set -euo pipefail
cd "$(dirname "$0")/.."
ctl="./build/mailroomctl -c etc/mailroom.conf"
$ctl init
$ctl deliver --to support@acme.test --from jane@customer.test <docs/sample-message.eml
echo
echo "== tickets"; $ctl ticket list
echo; echo "== contacts"; $ctl contact list
echo; echo "== accounts"; $ctl account list
echo
echo "Try: $ctl ticket show TKT-1"
echo "     $ctl --help"
