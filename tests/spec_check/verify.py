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
misreading shared by the beacon mock and the node cannot pass. Aggregates
and sync-committee contributions are rebuilt the same way: the signed
`AggregateAndProof` / `ContributionAndProof`, their selection proofs, and
the spec's aggregator selection rule applied to the (combined) proof.
Published blocks are read into the fork's `BeaconBlock` from their JSON:
the proposer signature over the spec's block root, the randao reveal under
the proposer's key, and, from Deneb on, one blob per commitment. It fails
if any signature does not verify, or if a run has no attestation, sync
message, aggregate, contribution or block to check.

Run by .ci/run with eth-consensus-specs (pinned there) installed.
"""

import json
import sys
from pathlib import Path

from eth_consensus_specs.utils.ssz.ssz_typing import (
    BitList, BitVector, Boolean, ByteList, ByteVector, Container, List, Uint, Vector)


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


def hex_bytes(value):
    return bytes.fromhex(value[2:])


def from_api_json(typ, value):
    """A value of the spec's SSZ type `typ` from its beacon-API JSON
    (numbers as decimal strings, bytes and bitfields as 0x-hex)."""
    if issubclass(typ, Boolean):
        return typ(value)
    if issubclass(typ, Uint):
        return typ(int(value))
    if issubclass(typ, (BitList, BitVector)):
        return typ.decode_bytes(hex_bytes(value))
    if issubclass(typ, (ByteVector, ByteList)):
        return typ(hex_bytes(value))
    if issubclass(typ, (List, Vector)):
        return typ(*(from_api_json(typ.element_cls(), v) for v in value))
    if issubclass(typ, Container):
        return typ(**{name: from_api_json(t, value[name]) for name, t in typ.fields().items()})
    raise TypeError(f"no JSON reading for {typ}")


def check_block(spec, record, version, gvr, keys):
    """The signing root of a published block, and what is wrong with its
    proposer or randao reveal (None if nothing)."""
    body = record["body"]
    signed = body.get("signed_block", body)  # Deneb on: the block with its blobs
    block = from_api_json(spec.BeaconBlock, signed["message"])
    index = int(record["validator_index"])
    epoch = spec.compute_epoch_at_slot(block.slot)
    randao_root = spec.compute_signing_root(
        spec.Epoch(epoch), spec.compute_domain(spec.DOMAIN_RANDAO, version, gvr))
    problem = None
    if int(block.proposer_index) != index or int(block.slot) != int(record["slot"]):
        problem = "the proposer index or slot differs from the record's"
    elif not spec.bls.Verify(keys[index], randao_root, bytes(block.body.randao_reveal)):
        problem = "the randao reveal does not verify under the proposer's key"
    elif "blob_kzg_commitments" in block.body.fields() and \
            len(body.get("blobs", [])) != len(block.body.blob_kzg_commitments):
        problem = "the blobs published do not match the block's commitments"
    domain = spec.compute_domain(spec.DOMAIN_BEACON_PROPOSER, version, gvr)
    return spec.compute_signing_root(block, domain), problem


def field_type(container, name):
    return container.fields()[name]


def aggregate_and_proof(spec, message):
    aggregate = message["aggregate"]
    fields = dict(
        aggregation_bits=field_type(spec.Attestation, "aggregation_bits").decode_bytes(
            hex_bytes(aggregate["aggregation_bits"])),
        data=attestation_data(spec, aggregate["data"]),
        signature=hex_bytes(aggregate["signature"]),
    )
    if "committee_bits" in spec.Attestation.fields():  # Electra on
        fields["committee_bits"] = field_type(spec.Attestation, "committee_bits").decode_bytes(
            hex_bytes(aggregate["committee_bits"]))
    return spec.AggregateAndProof(
        aggregator_index=int(message["aggregator_index"]),
        aggregate=spec.Attestation(**fields),
        selection_proof=hex_bytes(message["selection_proof"]),
    )


def contribution_and_proof(spec, message):
    contribution = message["contribution"]
    return spec.ContributionAndProof(
        aggregator_index=int(message["aggregator_index"]),
        contribution=spec.SyncCommitteeContribution(
            slot=int(contribution["slot"]),
            beacon_block_root=hex_bytes(contribution["beacon_block_root"]),
            subcommittee_index=int(contribution["subcommittee_index"]),
            aggregation_bits=field_type(spec.SyncCommitteeContribution, "aggregation_bits").decode_bytes(
                hex_bytes(contribution["aggregation_bits"])),
            signature=hex_bytes(contribution["signature"]),
        ),
        selection_proof=hex_bytes(message["selection_proof"]),
    )


def check_aggregation(spec, kind, record, version, gvr, keys):
    """The signing root of a signed aggregate or contribution, and what is
    wrong with its selection proof (None if nothing)."""
    message = record["body"]["message"]
    index = int(record["validator_index"])
    if kind == "aggregate":
        obj = aggregate_and_proof(spec, message)
        slot = int(obj.aggregate.data.slot)
        domain = spec.compute_domain(spec.DOMAIN_AGGREGATE_AND_PROOF, version, gvr)
        proof_root = spec.compute_signing_root(
            spec.Slot(slot), spec.compute_domain(spec.DOMAIN_SELECTION_PROOF, version, gvr))
        committee_length = len(obj.aggregate.aggregation_bits)
        modulo = max(1, committee_length // spec.TARGET_AGGREGATORS_PER_COMMITTEE)
        elected = spec.bytes_to_uint64(spec.hash(obj.selection_proof)[0:8]) % modulo == 0
    else:
        obj = contribution_and_proof(spec, message)
        contribution = obj.contribution
        domain = spec.compute_domain(spec.DOMAIN_CONTRIBUTION_AND_PROOF, version, gvr)
        selection = spec.SyncAggregatorSelectionData(
            slot=contribution.slot, subcommittee_index=contribution.subcommittee_index)
        proof_root = spec.compute_signing_root(
            selection, spec.compute_domain(spec.DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, version, gvr))
        elected = spec.is_sync_committee_aggregator(obj.selection_proof)
    problem = None
    if int(obj.aggregator_index) != index:
        problem = "the aggregator index differs from the record's"
    elif not spec.bls.Verify(keys[index], proof_root, bytes(obj.selection_proof)):
        problem = "the selection proof does not verify under the validator's key"
    elif not elected:
        problem = "the selection proof does not elect the validator"
    return spec.compute_signing_root(obj, domain), problem


def check_run(directory):
    chain = json.loads((directory / "chain.json").read_text())
    spec = load_spec(chain["fork"])
    version = bytes.fromhex(chain["fork_version"][2:])
    gvr = bytes.fromhex(chain["genesis_validators_root"][2:])
    keys = [bytes.fromhex(k[2:]) for k in chain["validators"]]
    ours = int(chain["cluster_validators"])
    checked = {"attestation": 0, "sync_message": 0, "aggregate": 0, "contribution": 0, "block": 0}
    seen = set()
    failures = []
    for line in (directory / "submissions.jsonl").read_text().splitlines():
        record = json.loads(line)
        kind = record["kind"]
        index = int(record["validator_index"])
        if kind not in checked or index >= ours:
            continue
        body = record["body"]
        signature = hex_bytes(body.get("signed_block", body)["signature"])
        key = (kind, record["slot"], index, signature)
        if key in seen:
            continue  # every node submits the same combined signature
        seen.add(key)
        if kind == "block":
            root, problem = check_block(spec, record, version, gvr, keys)
            if problem:
                failures.append(f"block slot {record['slot']} validator {index}: {problem}")
        elif kind in ("aggregate", "contribution"):
            root, problem = check_aggregation(spec, kind, record, version, gvr, keys)
            if problem:
                failures.append(f"{kind} slot {record['slot']} validator {index}: {problem}")
        elif kind == "attestation":
            data = attestation_data(spec, body["data"])
            domain = spec.compute_domain(spec.DOMAIN_BEACON_ATTESTER, version, gvr)
            obj = data
            if "attester_index" in body and int(body["attester_index"]) != index:
                failures.append(f"{kind} slot {record['slot']}: attester index differs")
                continue
        else:
            obj = spec.Root(bytes.fromhex(body["beacon_block_root"][2:]))
            domain = spec.compute_domain(spec.DOMAIN_SYNC_COMMITTEE, version, gvr)
        if kind in ("attestation", "sync_message"):
            root = spec.compute_signing_root(obj, domain)
        if "0x" + bytes(root).hex() != record["signing_root"]:
            failures.append(f"{kind} slot {record['slot']} validator {index}: the mock's signing root differs from the spec's")
        if not spec.bls.Verify(keys[index], root, signature):
            failures.append(f"{kind} slot {record['slot']} validator {index}: signature does not verify")
        checked[kind] += 1
    print(f"{directory}: {chain['fork']}: checked {checked['attestation']} attestations, "
          f"{checked['sync_message']} sync-committee messages, {checked['aggregate']} aggregates, "
          f"{checked['contribution']} contributions and {checked['block']} blocks with the executable spec")
    if 0 in checked.values():
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
