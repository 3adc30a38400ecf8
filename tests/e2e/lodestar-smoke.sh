#!/usr/bin/env bash
# Smoke test with real clients: unmodified Lodestar 1.5.1 validator clients
# attest through four Phalanx nodes on a Lodestar dev chain.
#
#  1. installs Lodestar 1.5.1 from ../shared/e2e (or $PHALANX_SHARED/e2e)
#     into target/e2e/lodestar-1.5.1, skipping `npm ci` when the installed
#     tree was made from the same lock with the same Node;
#  2. starts `lodestar dev` (minimal preset, 2 s slots, Altair at genesis,
#     Bellatrix at epoch 2, Capella at epoch 4, no eth1) with 32 interop
#     validators, of which it runs 0..20 itself: those hold 65.6 % of the
#     stake, so the chain justifies and finalizes only with the
#     distributed validators' (DV) votes;
#  3. derives the interop secret keys of validators 21..31, checks their
#     public keys against the beacon node's, writes EIP-2335 keystores;
#  4. splits them with `phalanx create cluster --split-existing-keys` into a
#     4-operator, threshold-3 cluster on the dev chain's network (its
#     /eth/v1/config/spec written as a config.yaml);
#  5. starts 4 `phalanx run` nodes and 4 `lodestar validator` clients, each
#     with only its operator's share keystores (each with its own password,
#     laid out as Lodestar keeps imported keys), pointed at its own node;
#  6. asserts from the beacon node's REST API alone, first, that before
#     Capella (Altair and Bellatrix, from two slots after the clients have
#     found their validators) a DV block is canonical at every slot a DV
#     validator was to propose at; then, for at least 2 consecutive epochs
#     from Capella on, in each of three phases:
#       - every node up;
#       - phalanx1 stopped (3 of 4 nodes, the threshold);
#       - phalanx1 restarted and, from the next epoch (when its client
#         fetches its duties again), phalanx2 stopped, which works only if
#         the restarted node signs again;
#     that the DV validators' attestations are in blocks, that a DV block
#     is canonical at every slot a DV validator was to propose at, that
#     every DV sync-committee bit is set in the blocks, and that the chain
#     finalizes the first of those epochs. Lodestar 1.5.1 packs blocks only
#     from aggregates and, not being DV-aware, cannot aggregate for a DV: a
#     DV attestation reaches a block through the aggregate of a dev-chain
#     validator of the same committee, so the few DV validators whose whole
#     committee is DV (under 1 % of committees) are reported, not counted;
#  7. stops every process it started, by PID, prints a summary, and on
#     failure the tail of every log. Everything of a run stays in
#     target/e2e/smoke-<timestamp>/.
#
# Without the shared folder the test says so and passes, except under
# CI=true, where that is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
HELPER="$REPO/tests/e2e/lodestar_smoke.py"
STARTED_AT=$(date +%s)
say() { echo "lodestar-smoke [$(( $(date +%s) - STARTED_AT )) s]: $*"; }
# Errors the nodes print say what is wrong; their backtraces only bury it.
export RUST_LIB_BACKTRACE=0
export NO_COLOR=1

SHARED=${PHALANX_SHARED:-$REPO/../shared}
SOURCE="$SHARED/e2e/lodestar-1.5.1"
if [ ! -f "$SOURCE/package-lock.json" ]; then
    if [ "${CI:-}" = true ]; then
        echo "lodestar-smoke: $SOURCE is absent; CI needs it" >&2
        exit 1
    fi
    echo "lodestar-smoke: $SOURCE is absent; skipping the Lodestar smoke test"
    exit 0
fi

# The chain.
GENESIS_VALIDATORS=32
DV_FIRST=21   # validators DV_FIRST..GENESIS_VALIDATORS-1 are the cluster's
DV_COUNT=$((GENESIS_VALIDATORS - DV_FIRST))
# Altair for two epochs: the clients take several slots to start, and
# the blocks of both forks before Capella are judged once they have.
BELLATRIX_EPOCH=2
CAPELLA_EPOCH=4
SLOTS_PER_EPOCH=8   # the minimal preset
# 2-second slots: a DV attestation needs the dev chain's attestation data,
# the cluster's consensus on it and a round of partial signatures between
# the first third of the slot and the dev chain's aggregation at two
# thirds, 0.67 s. E2E_SECONDS_PER_SLOT changes it.
SECONDS_PER_SLOT=${E2E_SECONDS_PER_SLOT:-2}
NEED_EPOCHS=2       # consecutive epochs with every DV duty on chain, per phase
SLACK_EPOCHS=6      # epochs allowed beyond that before giving up (first phase)
OUTAGE_SLACK_EPOCHS=6  # the same in the phases with a node down
PARAMS=(--params.SECONDS_PER_SLOT "$SECONDS_PER_SLOT"
        --params.ALTAIR_FORK_EPOCH 0
        --params.BELLATRIX_FORK_EPOCH "$BELLATRIX_EPOCH"
        --params.CAPELLA_FORK_EPOCH "$CAPELLA_EPOCH")
ADDRESS=0x000000000000000000000000000000000000dead
NODES=4
THRESHOLD=3

# --- 1. Lodestar, installed once per lock --------------------------------------

CACHE="$REPO/target/e2e/lodestar-1.5.1"
LODESTAR="$CACHE/node_modules/.bin/lodestar"
# Native modules are built for one Node ABI: the version is part of the key.
WANT=$(cat "$SOURCE/package.json" "$SOURCE/package-lock.json" <(node --version) | sha256sum | cut -d' ' -f1)
mkdir -p "$REPO/target/e2e"
# One installer at a time: runs may start side by side.
exec 9> "$REPO/target/e2e/.lodestar-install.lock"
flock 9
if [ ! -x "$LODESTAR" ] || [ "$(cat "$CACHE/.installed-from" 2>/dev/null)" != "$WANT" ]; then
    say "installing Lodestar 1.5.1 into $CACHE (npm ci, a few minutes)"
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    cp "$SOURCE/package.json" "$SOURCE/package-lock.json" "$CACHE/"
    (cd "$CACHE" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$WANT" > "$CACHE/.installed-from"
fi
flock -u 9
exec 9>&-

# PHALANX_BIN names a built binary (.ci/run passes the one its tests ran);
# without it, the script builds one.
if [ -n "${PHALANX_BIN:-}" ]; then
    PHALANX=$PHALANX_BIN
else
    cargo build -p phalanx --quiet
    PHALANX="$REPO/target/debug/phalanx"
fi
say "Lodestar installed, phalanx at $PHALANX"

# --- processes and clean-up ----------------------------------------------------

RUN="$REPO/target/e2e/smoke-$(date +%Y%m%d-%H%M%S)"
mkdir "$RUN"
# Keep the five latest runs.
ls -d "$REPO"/target/e2e/smoke-* | head -n -5 | xargs -r rm -rf

PIDS=()
NAMES=()
start() { # start NAME DIR COMMAND...: runs COMMAND in DIR, logging to $RUN/NAME.log
    local name=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    env -C "$dir" "$@" > "$RUN/$name.log" 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
    echo "$!" > "$RUN/$name.pid"
}

alive() { kill -0 "$1" 2>/dev/null; }

stop_one() { # stop_one NAME: stops that process on purpose (TERM, then KILL after 10 s)
    local j _
    for j in "${!PIDS[@]}"; do
        if [ "${NAMES[j]}" = "$1" ]; then
            kill -TERM "${PIDS[j]}" 2>/dev/null || true
            for _ in $(seq 40); do alive "${PIDS[j]}" || break; sleep 0.25; done
            alive "${PIDS[j]}" && kill -KILL "${PIDS[j]}" 2>/dev/null || true
            wait "${PIDS[j]}" 2>/dev/null || true
            NAMES[j]="stopped-$1"
        fi
    done
}

stop_group() { # stop_group PREFIX: TERM, then KILL after 10 s, the processes named PREFIX*
    local prefix=$1 j i
    local group=()
    for j in "${!PIDS[@]}"; do
        [[ ${NAMES[j]} == "$prefix"* ]] && group+=("${PIDS[j]}")
    done
    [ "${#group[@]}" = 0 ] && return 0
    for i in "${group[@]}"; do alive "$i" && kill -TERM "$i" 2>/dev/null || true; done
    for _ in $(seq 40); do
        local any=0
        for i in "${group[@]}"; do alive "$i" && any=1; done
        [ "$any" = 0 ] && break
        sleep 0.25
    done
    for i in "${group[@]}"; do alive "$i" && kill -KILL "$i" 2>/dev/null || true; done
    for i in "${group[@]}"; do wait "$i" 2>/dev/null || true; done
}

# Clients first, then the nodes they talk to, then the chain: nothing is
# left talking to a stopped server.
stop_all() {
    stop_group vc
    stop_group phalanx
    stop_group bn
}

STEP="setting up"
MONITOR=
MONITORING_PORTS=()
finish() {
    local rc=$? i
    trap - EXIT INT TERM
    [ -n "$MONITOR" ] && kill "$MONITOR" 2>/dev/null || true
    for i in "${!MONITORING_PORTS[@]}"; do
        echo "phalanx$i: $(python3 "$HELPER" outcomes "http://127.0.0.1:${MONITORING_PORTS[i]}/metrics" 2>&1)" \
            >> "$RUN/duty-outcomes.txt"
    done
    stop_all
    echo
    echo "=== lodestar-smoke summary ($(( $(date +%s) - STARTED_AT )) s, run folder $RUN)"
    # The chain runs in real time: a saturated machine stalls the beacon
    # node and misses duties, which the load explains.
    echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
    if [ -s "$RUN/duty-outcomes.txt" ]; then
        echo "Phalanx duty outcomes (the nodes' own view, reported only):"
        cat "$RUN/duty-outcomes.txt"
    fi
    if ls "$RUN"/vc*.log > /dev/null 2>&1; then
        echo "Lodestar validator clients' errors (reported only):"
        python3 "$HELPER" client-errors "$RUN"/vc*.log || true
    fi
    if [ "$rc" = 0 ]; then
        echo "PASS"
    else
        echo "FAIL while $STEP (exit $rc)"
        for log in "$RUN"/*.log; do
            echo
            echo "--- last 25 lines of $log (without stack frames)"
            sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -v '^[[:space:]]*at ' | tail -n 25 || true
        done
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 2. the dev chain ------------------------------------------------------------

mapfile -t PORT < <(python3 "$HELPER" ports $((2 + 2 * NODES)))
BN_PORT=${PORT[0]}
BN_P2P_PORT=${PORT[1]}
BN="http://127.0.0.1:$BN_PORT"
P2P_TCP=$(python3 "$HELPER" port-block "$NODES")
P2P_UDP=$(python3 "$HELPER" port-block "$NODES")

STEP="starting the Lodestar dev chain"
start bn "$RUN/bn" "$LODESTAR" dev --preset minimal --dataDir "$RUN/bn" \
    --genesisValidators "$GENESIS_VALIDATORS" --startValidators "0..$((DV_FIRST - 1))" \
    "${PARAMS[@]}" --eth1=false --discv5=false --mdns=false \
    --listenAddress 127.0.0.1 --port "$BN_P2P_PORT" \
    --rest --rest.address 127.0.0.1 --rest.port "$BN_PORT" --rest.namespace '*' \
    --beaconNodes "$BN" --suggestedFeeRecipient "$ADDRESS"
python3 "$HELPER" wait-rest "$BN" 90 "${PIDS[0]}"
say "dev chain at $BN (validators 0..$((DV_FIRST - 1)) run by lodestar dev)"

# --- 3. the DV validators' keys ---------------------------------------------------

STEP="deriving the interop keys"
python3 "$HELPER" interop-keys "$BN" "$DV_FIRST" "$DV_COUNT" "$RUN/interop-keys"

# --- 4. the cluster ----------------------------------------------------------------

STEP="creating the cluster"
python3 "$HELPER" network-yaml "$BN" "$RUN/network.yaml"
GENESIS_TIME=$(python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1] + "/eth/v1/beacon/genesis"))["data"]["genesis_time"])' "$BN")
"$PHALANX" create cluster --name lodestar-smoke --nodes "$NODES" --threshold "$THRESHOLD" \
    --network "$RUN/network.yaml" --builder-timestamp "$GENESIS_TIME" \
    --withdrawal-addresses "$ADDRESS" --fee-recipient-addresses "$ADDRESS" \
    --split-existing-keys "$RUN/interop-keys" --cluster-dir "$RUN/cluster" \
    --p2p-tcp-port "$P2P_TCP" --p2p-udp-port "$P2P_UDP" --insecure-keys \
    > "$RUN/create-cluster.log" 2>&1 || { cat "$RUN/create-cluster.log"; exit 1; }
say "$(tail -n 1 "$RUN/create-cluster.log")"
python3 "$HELPER" check-lock "$RUN/cluster/node0/cluster-lock.json" "$BN" "$DV_FIRST" "$DV_COUNT"

# --- 5. Phalanx nodes and Lodestar validator clients ------------------------------------

STEP="starting the Phalanx nodes"
API_PORTS=("${PORT[@]:2:NODES}")
MONITORING_PORTS=("${PORT[@]:2+NODES:NODES}")
start_node() { # start_node I: Phalanx node I (again, after a stop: its log is appended)
    local i=$1
    [ -f "$RUN/phalanx$i.log" ] && mv "$RUN/phalanx$i.log" "$RUN/phalanx$i.before-restart.log"
    start "phalanx$i" "$RUN/cluster/node$i" "$PHALANX" run \
        --data-dir "$RUN/cluster/node$i" --beacon-node-endpoints "$BN" \
        --validator-api-address "127.0.0.1:${API_PORTS[i]}" \
        --monitoring-address "127.0.0.1:${MONITORING_PORTS[i]}" \
        --p2p-tcp-address "127.0.0.1:$((P2P_TCP + i))" \
        --log-level "info,phalanx_node=debug"
}
for i in $(seq 0 $((NODES - 1))); do
    start_node "$i"
done
for i in $(seq 0 $((NODES - 1))); do
    python3 "$HELPER" wait-rest "http://127.0.0.1:${API_PORTS[i]}" 60 "${PIDS[@]}"
done
say "Phalanx nodes' validator APIs up on ports ${API_PORTS[*]}"

STEP="starting the Lodestar validator clients"
for i in $(seq 0 $((NODES - 1))); do
    python3 "$HELPER" vc-keys "$RUN/cluster/node$i/validator_keys" "$RUN/vc$i"
    start "vc$i" "$RUN/vc$i" "$LODESTAR" validator --network dev --preset minimal \
        --dataDir "$RUN/vc$i" --keystoresDir "$RUN/vc$i/keystores" --secretsDir "$RUN/vc$i/secrets" \
        --beaconNodes "http://127.0.0.1:${API_PORTS[i]}" "${PARAMS[@]}" \
        --suggestedFeeRecipient "$ADDRESS"
done

# A client takes part once it has found its validators on the chain: that
# takes a few seconds, more on a loaded machine (Node.js loading Lodestar).
STEP="waiting for the Lodestar validator clients to find their validators"
for i in $(seq 0 $((NODES - 1))); do
    for j in "${!PIDS[@]}"; do [ "${NAMES[j]}" = "vc$i" ] && VC_PID=${PIDS[j]}; done
    WAITED=0
    until grep -q "Discovered new validators" "$RUN/vc$i.log"; do
        alive "$VC_PID" || { STEP="$STEP: vc$i exited"; exit 1; }
        [ "$WAITED" -lt 240 ] || { STEP="$STEP: vc$i found none in 120 s"; exit 1; }
        sleep 0.5
        WAITED=$((WAITED + 1))
    done
done
say "Lodestar validator clients have found their validators"

# --- 6. the chain's verdict -------------------------------------------------------

current_epoch() { echo $(( ($(date +%s) - GENESIS_TIME) / SECONDS_PER_SLOT / SLOTS_PER_EPOCH )); }

watch() { # watch LABEL COMMAND...: runs a verdict of the chain, failing early if a process dies
    local label=$1 j
    shift
    STEP="watching the chain ($label)"
    timeout 900 python3 "$HELPER" "$@" &
    MONITOR=$!
    # Fail early if a process dies that was not stopped on purpose.
    while alive "$MONITOR"; do
        for j in "${!PIDS[@]}"; do
            if [[ ${NAMES[j]} != stopped-* ]] && ! alive "${PIDS[j]}"; then
                kill "$MONITOR" 2>/dev/null || true
                STEP="watching the chain ($label): ${NAMES[j]} exited"
                exit 1
            fi
        done
        sleep 1
    done
    wait "$MONITOR"
    MONITOR=
}

judge() { # judge LABEL FROM_EPOCH SLACK: the chain's verdict on the epochs from FROM_EPOCH on
    local label=$1 from=$2 slack=$3
    say "judging epochs from $from ($label)"
    watch "$label" monitor "$BN" "$DV_FIRST" "$DV_COUNT" "$from" "$NEED_EPOCHS" \
        $((from + NEED_EPOCHS + slack)) "$RUN/summary-${label// /-}.json" "$label"
}

# Phase 1: every node up.
NOW_SLOT=$(( ($(date +%s) - GENESIS_TIME) / SECONDS_PER_SLOT ))
# The clients fetch their duties once they have found their validators:
# they sign from the slot after next.
FIRST_SLOT=$((NOW_SLOT + 2))
FROM_EPOCH=$(( FIRST_SLOT / SLOTS_PER_EPOCH + 1 ))
say "DV started at slot $NOW_SLOT"
# Phase 0: blocks before Capella (Altair, Bellatrix), proposed at every DV
# proposer slot once the clients have started.
if [ "$FIRST_SLOT" -lt $((CAPELLA_EPOCH * SLOTS_PER_EPOCH)) ]; then
    say "judging DV proposals from slot $FIRST_SLOT to Capella"
    watch "before capella" early-proposals "$BN" "$DV_FIRST" "$DV_COUNT" "$FIRST_SLOT" \
        "$CAPELLA_EPOCH" "$RUN/summary-before-capella.json"
    FROM_EPOCH=$CAPELLA_EPOCH
else
    STEP="starting the DV before Capella (it started at slot $NOW_SLOT)"
    exit 1
fi
judge "all nodes up" "$FROM_EPOCH" "$SLACK_EPOCHS"

# Phase 2: one node down (threshold 3 of 4 still sign), for at least the
# two whole epochs judged.
stop_one phalanx1
say "stopped phalanx1 in epoch $(current_epoch)"
judge "phalanx1 down" $(( $(current_epoch) + 1 )) "$OUTAGE_SLACK_EPOCHS"

# Phase 3: phalanx1 back, another node down: the validators keep working
# only if the restarted node signs again.
start_node 1
python3 "$HELPER" wait-rest "http://127.0.0.1:${API_PORTS[1]}" 60
# Its validator client failed to fetch duties while the node was down and
# asks again at the next epoch: stop the other node once that has passed.
RESTARTED_IN=$(current_epoch)
say "restarted phalanx1 in epoch $RESTARTED_IN; stopping phalanx2 in epoch $((RESTARTED_IN + 1))"
while [ "$(current_epoch)" -le "$RESTARTED_IN" ]; do sleep 1; done
sleep $((SECONDS_PER_SLOT * 2))
stop_one phalanx2
say "stopped phalanx2 in epoch $(current_epoch)"
judge "phalanx1 restarted, phalanx2 down" $(( $(current_epoch) + 1 )) "$OUTAGE_SLACK_EPOCHS"
