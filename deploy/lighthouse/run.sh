#!/bin/sh
# The Lighthouse validator client of one Phalanx operator. Phalanx writes
# each key share as validator_keys/keystore-N.json with its password in
# keystore-N.txt; Lighthouse finds keystores as
# validators/0x<pubkey>/voting-keystore.json with the password in
# secrets/0x<pubkey>. Lay them out so (again at every start, so that shares
# added later are picked up), then run the client against this operator's
# Phalanx node.
set -eu

KEYS=${KEYS_DIR:-/keys}
DATA=${DATA_DIR:-/data}
VALIDATORS=$DATA/validators
SECRETS=$DATA/secrets
mkdir -p "$VALIDATORS" "$SECRETS"
chmod 700 "$SECRETS"

found=0
for keystore in "$KEYS"/keystore-*.json; do
    [ -e "$keystore" ] || continue
    password="${keystore%.json}.txt"
    if [ ! -s "$password" ]; then
        echo "run.sh: $password is missing: every keystore needs its password file" >&2
        exit 1
    fi
    pubkey=$(sed -n 's/.*"pubkey"[[:space:]]*:[[:space:]]*"\(0x\)\{0,1\}\([0-9a-fA-F]\{96\}\)".*/\2/p' "$keystore" | head -n 1)
    if [ -z "$pubkey" ]; then
        echo "run.sh: no public key in $keystore" >&2
        exit 1
    fi
    mkdir -p "$VALIDATORS/0x$pubkey"
    cp "$keystore" "$VALIDATORS/0x$pubkey/voting-keystore.json"
    cp "$password" "$SECRETS/0x$pubkey"
    chmod 600 "$SECRETS/0x$pubkey"
    found=$((found + 1))
done
if [ "$found" -eq 0 ]; then
    echo "run.sh: no keystore-*.json in $KEYS: mount the operator's validator_keys folder" >&2
    exit 1
fi
echo "run.sh: $found key share(s) ready"

exec lighthouse validator_client \
    --network "$NETWORK" \
    --datadir "$DATA" \
    --validators-dir "$VALIDATORS" \
    --secrets-dir "$SECRETS" \
    --init-slashing-protection \
    --beacon-nodes "$BEACON_NODES" \
    --distributed \
    --suggested-fee-recipient "$FEE_RECIPIENT" \
    --metrics \
    --metrics-address 0.0.0.0 \
    --metrics-port 5064
