#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder a peer or a validator client
# reaches, under AFL++ (cargo afl, stable toolchain). A bench, not CI: CI
# replays the committed corpus (`cargo test -p phalanx-fuzz`).
#
#   fuzz/run.sh [EXECUTIONS_PER_TARGET] [TARGET…]
#
# Defaults: 10,000,000 executions for each target, each input limited to
# 100 ms (-t 100). With FUZZ_SECONDS set, each target runs that long
# instead, whatever its executions. Prints per target the executions, executions per second,
# crashes, hangs, the slowest input's time and the corpus size, then copies
# new corpus entries into fuzz/corpus/<target>/ after minimising them.
set -euo pipefail
cd "$(dirname "$0")"
execs="${1:-10000000}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(p2p_frame qbft_message partial_batch peerinfo dkg_envelope cluster_definition cluster_lock keystore enr validator_api)
fi
if ! cargo afl --version >/dev/null 2>&1; then
  cargo install cargo-afl --version 0.18.2 --locked
fi
(cd afl && cargo afl build --release)
binary="$(pwd)/afl/target/release/phalanx-afl"
export AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
printf '%-20s %12s %10s %8s %6s %12s %8s\n' target executions "exec/s" crashes hangs "slowest_ms" corpus
for target in "${targets[@]}"; do
  out="out/$target"
  rm -rf "$out"
  mkdir -p out
  if [ -n "${FUZZ_SECONDS:-}" ]; then budget=(-V "$FUZZ_SECONDS"); else budget=(-E "$execs"); fi
  cargo afl fuzz -i "corpus/$target" -o "$out" -t 100 -m none "${budget[@]}" -- "$binary" "$target" \
    >"out-$target.log" 2>&1 || true
  stats="$out/default/fuzzer_stats"
  get() { awk -F' *: *' -v k="$1" '$1==k {print $2}' "$stats"; }
  printf '%-20s %12s %10s %8s %6s %12s %8s\n' "$target" "$(get execs_done)" "$(get execs_per_sec)" \
    "$(get saved_crashes)" "$(get saved_hangs)" "$(get slowest_exec_ms)" "$(get corpus_count)"
  mkdir -p "min/$target"
  cargo afl cmin -i "$out/default/queue" -o "min/$target" -t 1000 -- "$binary" "$target" >/dev/null 2>&1 || true
  for file in "min/$target"/*; do
    [ -f "$file" ] || continue
    cp "$file" "corpus/$target/$(sha256sum "$file" | cut -c1-16)"
  done
done
