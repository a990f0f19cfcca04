#!/usr/bin/env bash
# The whole suite: unit, integration (real Prefect server, PostgreSQL and Redis when they answer)
# and the dashboard in headless Chromium. Called by `make test` (and so by .ci/run).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

# The browser for e2e tests: Debian's chromium (never a downloaded build).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the dashboard tests ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/tmp/orbin-apt.log 2>&1 \
      || echo "chromium could not be installed (see /tmp/orbin-apt.log); e2e tests will fail"
  fi
fi

export PREFECT_SERVER_ANALYTICS_ENABLED=false
# Tests start their own servers on free ports; nothing may fall back to a temporary one.
unset PREFECT_API_URL
# The browser tests last: Playwright's sync API keeps an event loop running in this thread
# while it is open, which tests that call asyncio.run() cannot share.
paths=yes; for a in "$@"; do case "$a" in tests*) paths=no;; esac; done
if [ "$paths" = yes ]; then set -- "$@" tests/unit tests/integration tests/e2e; fi
$BIN/pytest -q -p no:cacheprovider --durations=25 "$@"
rc=$?
if [ "$rc" = 5 ]; then echo "no tests ran"; exit 1; fi
exit $rc
