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
# Unit tests in parallel processes (pytest-xdist; most of their time is spent waiting on the
# databases, so more processes than cores pay; ORBIN_TEST_PROCESSES=1 runs them in one). The
# integration and browser tests in one process after them: they start whole platforms, which
# several at once overload a 2-core machine into timeouts, and they share two of them (one per
# backend) for the session. The browser tests come last: Playwright's sync API keeps an event
# loop running in its thread, which tests that call asyncio.run() cannot share.
N=${ORBIN_TEST_PROCESSES:-3}
parallel=(-n "$N")
if [ "$N" = 1 ]; then parallel=(); fi
if [ "$#" -gt 0 ] && printf '%s\n' "$@" | grep -q '^tests'; then
  $BIN/pytest -q -p no:cacheprovider "$@"
  rc=$?
else
  start=$(date +%s)
  $BIN/pytest -q -p no:cacheprovider --durations=10 "${parallel[@]}" "$@" tests/unit
  rc=$?
  echo "unit: $(( $(date +%s) - start )) s"
  start=$(date +%s)
  $BIN/pytest -q -p no:cacheprovider --durations=25 "$@" tests/integration tests/e2e
  rest=$?
  echo "integration + e2e: $(( $(date +%s) - start )) s"
  if [ "$rc" = 0 ]; then rc=$rest; fi
fi
if [ "$rc" = 5 ]; then echo "no tests ran"; exit 1; fi
exit $rc
