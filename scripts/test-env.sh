#!/usr/bin/env bash
# Prints the environment for the real-service tests: export lines for
# ORCHEO_TEST_DATABASE_URL and ORCHEO_TEST_REDIS_URL, for each local
# service that answers (or as already set). Used by `make test`:
#   eval "$(scripts/test-env.sh)"
set -u
pg_url=${ORCHEO_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
redis_url=${ORCHEO_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -d "$pg_url" 2>/dev/null; then
  echo "export ORCHEO_TEST_DATABASE_URL='$pg_url'"
elif [ -n "${ORCHEO_TEST_DATABASE_URL:-}" ]; then
  echo "export ORCHEO_TEST_DATABASE_URL='$pg_url'"
else
  echo "echo 'PostgreSQL does not answer: the PostgreSQL tests will be skipped' >&2"
fi
hostport=${redis_url#redis://}; hostport=${hostport%%/*}; hostport=${hostport##*@}
if command -v redis-cli >/dev/null 2>&1 && redis-cli -h "${hostport%%:*}" -p "${hostport##*:}" ping 2>/dev/null | grep -q PONG; then
  echo "export ORCHEO_TEST_REDIS_URL='$redis_url'"
elif [ -n "${ORCHEO_TEST_REDIS_URL:-}" ]; then
  echo "export ORCHEO_TEST_REDIS_URL='$redis_url'"
else
  echo "echo 'Redis does not answer: the shared-Redis tests will be skipped' >&2"
fi
