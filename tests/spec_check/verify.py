"""Checks a devnet's recorded submissions with the official executable spec.

Usage: verify.py DEVNET_DIR [DEVNET_DIR ...]

Each DEVNET_DIR is the folder of a `phalanx devnet` run: `chain.json` (fork,
fork version, genesis validators root, the chain's validator keys) and
`submissions.jsonl` (every object the beacon-node mock received). For every
attestation and sync-committee message of the cluster's validators the
script rebuilds the signed container from the submitted JSON with the
spec's own SSZ types, computes the domain and signing root with the spec's
functions, and verifies the BLS signature under the validator's key from
`chain.json` (not the key the mock recorded) with the spec's BLS. So a
misreading shared by the beacon mock and the node cannot pass. It fails if
any signature does not verify, or if a run has no attestation or sync
message to check.

Run by .ci/run with eth-consensus-specs (pinned there) installed.
"""

import json
import sys
from pathlib import Path


def load_spec(fork):
    return __import__(f"eth_consensus_specs.{fork}.minimal", fromlist=["minimal"])


def checkpoint(spec, value):
    return spec.Checkpoint(epoch=int(value["epoch"]), root=bytes.fromhex(value["root"][2:]))


def attestation_data(spec, value):
    return spec.AttestationData(
        slot=int(value["slot"]),
        index=int(value["index"]),
        beacon_block_root=bytes.fromhex(value["beacon_block_root"][2:]),
        source=checkpoint(spec, value["source"]),
        target=checkpoint(spec, value["target"]),
    )


def check_run(directory):
    chain = json.loads((directory / "chain.json").read_text())
    spec = load_spec(chain["fork"])
    version = bytes.fromhex(chain["fork_version"][2:])
    gvr = bytes.fromhex(chain["genesis_validators_root"][2:])
    keys = [bytes.fromhex(k[2:]) for k in chain["validators"]]
    ours = int(chain["cluster_validators"])
    checked = {"attestation": 0, "sync_message": 0}
    seen = set()
    failures = []
    for line in (directory / "submissions.jsonl").read_text().splitlines():
        record = json.loads(line)
        kind = record["kind"]
        index = int(record["validator_index"])
        if kind not in checked or index >= ours:
            continue
        body = record["body"]
        signature = bytes.fromhex(body["signature"][2:])
        key = (kind, record["slot"], index, body["signature"])
        if key in seen:
            continue  # every node submits the same combined signature
        seen.add(key)
        if kind == "attestation":
            data = attestation_data(spec, body["data"])
            domain = spec.compute_domain(spec.DOMAIN_BEACON_ATTESTER, version, gvr)
            obj = data
            if "attester_index" in body and int(body["attester_index"]) != index:
                failures.append(f"{kind} slot {record['slot']}: attester index differs")
                continue
        else:
            obj = spec.Root(bytes.fromhex(body["beacon_block_root"][2:]))
            domain = spec.compute_domain(spec.DOMAIN_SYNC_COMMITTEE, version, gvr)
        root = spec.compute_signing_root(obj, domain)
        if "0x" + bytes(root).hex() != record["signing_root"]:
            failures.append(f"{kind} slot {record['slot']} validator {index}: the mock's signing root differs from the spec's")
        if not spec.bls.Verify(keys[index], root, signature):
            failures.append(f"{kind} slot {record['slot']} validator {index}: signature does not verify")
        checked[kind] += 1
    print(f"{directory}: {chain['fork']}: checked {checked['attestation']} attestations and "
          f"{checked['sync_message']} sync-committee messages with the executable spec")
    if checked["attestation"] == 0 or checked["sync_message"] == 0:
        failures.append(f"{directory}: nothing to check")
    return failures


def main():
    failures = []
    for argument in sys.argv[1:]:
        failures += check_run(Path(argument))
    for failure in failures:
        print("FAIL", failure)
    sys.exit(1 if failures or len(sys.argv) < 2 else 0)


if __name__ == "__main__":
    main()
