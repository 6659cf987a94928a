#!/usr/bin/env bash
# A stranger's first ten minutes, checked: clone this repository into an empty
# temporary folder and run the README's two commands there. The quick start
# (read from the README itself) must serve GET /version over mutual TLS to the
# root certificate it generated, verified against the server certificate it
# generated; the dev server must stop on `kill <PID it printed>`; then
# `npm test` must pass in the clone and `npx openkes` still run after it.
#
# Usage: scripts/check-clean-clone.sh [REPOSITORY]   (default: this checkout)
set -euo pipefail
source_repo="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
work="$(mktemp -d)"
server_pgid=""
cleanup() {
  # The quick start runs in its own process group (setsid): end all of it.
  if [ -n "$server_pgid" ]; then kill -- "-$server_pgid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== clean clone of $source_repo into $work/openkes"
git clone --quiet "$source_repo" "$work/openkes"
cd "$work/openkes"

quick_start="$(awk '/^## Quick start/ { inside = 1 } inside && /^```sh$/ { getline; print; exit }' README.md)"
echo "== README quick start: $quick_start"
[ "$quick_start" = 'npm install && npx openkes server --dev' ] || {
  echo "check-clean-clone: the README's quick start changed to '$quick_start': update this check" >&2
  exit 1
}
setsid bash -c "$quick_start" </dev/null >"$work/quick-start.log" 2>&1 &
server_pgid=$!

# npm install builds the project first: allow it minutes, not seconds.
dev=openkes-dev
for _ in $(seq 600); do
  if grep -q '^PID [0-9]*:' "$work/quick-start.log" 2>/dev/null; then break; fi
  if ! kill -0 "$server_pgid" 2>/dev/null; then
    echo "check-clean-clone: the quick start exited early:" >&2; cat "$work/quick-start.log" >&2; exit 1
  fi
  sleep 0.5
done
server_pid="$(sed -n 's/^PID \([0-9]*\):.*/\1/p' "$work/quick-start.log")"
[ -n "$server_pid" ] || { echo "check-clean-clone: no server after 300 s:" >&2; cat "$work/quick-start.log" >&2; exit 1; }

version="$(curl -sS --fail --max-time 30 --cacert "$dev/server.cert" --cert "$dev/root.cert" --key "$dev/root.key" https://127.0.0.1:7373/version)"
echo "== served: GET /version -> $version"
case "$version" in '{"version":"'*'"}') ;; *) echo "check-clean-clone: unexpected /version answer" >&2; exit 1 ;; esac

# Stop it the README's way: kill the PID the server printed.
kill "$server_pid"
for _ in $(seq 60); do kill -0 "$server_pgid" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$server_pgid" 2>/dev/null; then echo "check-clean-clone: 'kill $server_pid' did not stop the quick start" >&2; exit 1; fi
grep -q '^shutting down$' "$work/quick-start.log" || { echo "check-clean-clone: no clean shutdown:" >&2; cat "$work/quick-start.log" >&2; exit 1; }
server_pgid=""

echo "== npm test in the clone"
npm test
echo "== npx openkes --version after npm test: $(npx --no-install openkes --version)"
echo "== clean clone: quick start served, npm test passed"
