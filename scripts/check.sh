#!/usr/bin/env bash
# `npm test`: everything CI checks, after `npm ci`. Prints the time of
# each part. See docs/contributing.md.
#
#   set-up      FerretDB launcher (cached), Debian's PostgreSQL, Chromium and
#               curl when missing, the runtimes of scripts/runtimes/package.json
#   static      type check and linter
#   tests       the whole suite on Node 20, 22 and 24, Bun and Deno (from
#               npm packages), then on Node 20 with the mongodb 6.x driver
#   bench       a short run of every bench (the full runs: npm run bench:*)
#   package     publint, @arethetypeswrong, the docs' links, and every code
#               block README.md and docs/*.md mark to run, installed from the
#               packed tarball (scripts/package-check.ts)
set -euo pipefail
cd "$(dirname "$0")/.."

runtimes="$PWD/scripts/runtimes/node_modules"
bun_bin="$runtimes/@oven/bun-linux-x64/bin"
deno_bin="$runtimes/@deno/linux-x64-glibc"
part() {
  local started=$SECONDS
  echo "check: $1"
  "${@:2}"
  echo "check: '$1' took $((SECONDS - started)) s"
}

# The suite on one runtime: the runtime's own binaries first on PATH, so the
# workers vitest starts and the demo the browser test spawns run on it too.
suite_on() {
  local bin=$1
  shift
  PATH="$bin:$PATH" "$@"
}

part "set-up: servers and Debian packages" bash scripts/setup.sh
part "set-up: runtimes (npm ci in scripts/runtimes)" npm ci --prefix scripts/runtimes --no-audit --no-fund --loglevel=error
part "typecheck" npm run typecheck
part "lint" npm run lint

part "tests on Node 20" suite_on "$runtimes/node20/bin" env EXPECT_RUNTIME="node 20" node node_modules/vitest/vitest.mjs run
part "tests on Node 22" suite_on "$runtimes/node22/bin" env EXPECT_RUNTIME="node 22" node node_modules/vitest/vitest.mjs run
part "tests on Node 24" suite_on "$runtimes/node24/bin" env EXPECT_RUNTIME="node 24" node node_modules/vitest/vitest.mjs run
# --bun: plain `bun x` would run vitest on Node.
part "tests on Bun" suite_on "$bun_bin" env EXPECT_RUNTIME=bun bun --bun x vitest run
part "tests on Deno" suite_on "$deno_bin" env EXPECT_RUNTIME=deno deno run -A npm:vitest run
part "tests on Node 20 with the mongodb 6.x driver" \
  suite_on "$runtimes/node20/bin" env EXPECT_RUNTIME="node 20" MONGODB_DRIVER=6 node node_modules/vitest/vitest.mjs run

# The benches, briefly (results in a temporary folder): they run, check their
# own answers and render their charts. The full runs are `npm run bench:*`.
bench_smoke() {
  local out
  out=$(mktemp -d)
  BENCH_OUT=$out BENCH_REQUESTS=100 BENCH_ROUNDS=2 BENCH_WARMUP_MS=0 BENCH_COLD_SESSIONS=200 node --import tsx bench/library-cost.ts > /dev/null
  BENCH_OUT=$out BENCH_REQUESTS=100 BENCH_ROUNDS=2 node --import tsx bench/telemetry-cost.ts > /dev/null
  BENCH_OUT=$out BENCH_SCALE_PG=2000 BENCH_SCALE_MONGO=2000 BENCH_RUNS=2 node --import tsx bench/scale.ts > /dev/null
  BENCH_OUT=$out BENCH_PARALLEL_PG=100 BENCH_PARALLEL_MONGO=20 BENCH_RUNS=1 node --import tsx bench/parallel-writers.ts > /dev/null
  BENCH_OUT=$out BENCH_REQUESTS=50 BENCH_COOKIE_POOL=16 BENCH_SESSIONS=1000 BENCH_PARALLEL_RUNS=1 BENCH_PARALLEL_PG=20 BENCH_PARALLEL_MONGO=10 \
    node --expose-gc --import tsx bench/run.ts > /dev/null
  BENCH_OUT=$out node --import tsx bench/charts.ts
  rm -rf "$out"
}
part "bench smoke" suite_on "$runtimes/node24/bin" bench_smoke

part "package checks" suite_on "$runtimes/node20/bin" env BUN="$bun_bin/bun" DENO="$deno_bin/deno" \
  node --import tsx scripts/package-check.ts
