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
# Unit and integration tests in parallel processes (most of their time is spent waiting on
# servers, so more processes than cores pay), grouped by file so a module's fixtures stay in
# one process; ORBIN_TEST_PROCESSES=1 runs them in one. The browser tests after, in one
# process: Playwright's sync API keeps an event loop running in its thread, which tests that
# call asyncio.run() cannot share.
N=${ORBIN_TEST_PROCESSES:-3}
parallel=(-n "$N" --dist loadfile)
if [ "$N" = 1 ]; then parallel=(); fi
if [ "$#" -gt 0 ] && printf '%s\n' "$@" | grep -q '^tests'; then
  $BIN/pytest -q -p no:cacheprovider "$@"
  rc=$?
else
  start=$(date +%s)
  $BIN/pytest -q -p no:cacheprovider --durations=15 "${parallel[@]}" "$@" tests/unit tests/integration
  rc=$?
  echo "unit + integration: $(( $(date +%s) - start )) s"
  start=$(date +%s)
  $BIN/pytest -q -p no:cacheprovider --durations=10 "$@" tests/e2e
  e2e=$?
  echo "e2e: $(( $(date +%s) - start )) s"
  if [ "$rc" = 0 ]; then rc=$e2e; fi
fi
if [ "$rc" = 5 ]; then echo "no tests ran"; exit 1; fi
exit $rc
