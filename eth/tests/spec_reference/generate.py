"""Reference roots from the official executable consensus spec.

Writes JSON to stdout: random values of every container Phalanx signs or
carries, in the mainnet and minimal presets and every fork from Phase 0 to
Fulu (test chains still start before Capella), with their hash_tree_root
and their signing roots in every duty domain. The
Rust test `eth/tests/spec_reference.rs` checks its own roots against these.

Run by .ci/run with eth-consensus-specs (pinned there) installed.
"""

import json
import random
import sys

from eth_consensus_specs.debug.encode import encode
from eth_consensus_specs.debug.random_value import RandomizationMode, get_random_ssz_object

FORKS = ["phase0", "altair", "bellatrix", "capella", "deneb", "electra", "fulu"]
PRESETS = ["mainnet", "minimal"]
CASES_PER_CONTAINER = 3

COMMON = [
    "Checkpoint", "AttestationData", "Attestation", "IndexedAttestation", "AttesterSlashing",
    "AggregateAndProof", "SignedAggregateAndProof", "BeaconBlockHeader", "SignedBeaconBlockHeader",
    "ProposerSlashing", "SyncCommitteeMessage", "SyncCommitteeContribution", "ContributionAndProof",
    "SignedContributionAndProof", "SyncAggregatorSelectionData", "SyncAggregate", "VoluntaryExit",
    "SignedVoluntaryExit", "DepositMessage", "DepositData", "Deposit", "Eth1Data", "Withdrawal",
    "BLSToExecutionChange", "SignedBLSToExecutionChange", "ExecutionPayload",
    "ExecutionPayloadHeader", "BeaconBlockBody", "BeaconBlock", "ForkData", "SigningData",
]
ELECTRA_ON = ["SingleAttestation", "ExecutionRequests", "DepositRequest", "WithdrawalRequest",
              "ConsolidationRequest"]

# Every domain a duty signs in, plus the builder's (builder-specs).
DOMAINS = {
    "beacon_proposer": "0x00000000", "beacon_attester": "0x01000000", "randao": "0x02000000",
    "deposit": "0x03000000", "voluntary_exit": "0x04000000", "selection_proof": "0x05000000",
    "aggregate_and_proof": "0x06000000", "sync_committee": "0x07000000",
    "sync_committee_selection_proof": "0x08000000", "contribution_and_proof": "0x09000000",
    "application_builder": "0x00000001",
}


def load(fork, preset):
    module = __import__(f"eth_consensus_specs.{fork}.{preset}", fromlist=[preset])
    return module


def main():
    rng = random.Random(20261123)
    cases = []
    for preset in PRESETS:
        for fork in FORKS:
            spec = load(fork, preset)
            names = [name for name in COMMON if hasattr(spec, name)]
            names += ELECTRA_ON if fork in ("electra", "fulu") else []
            for name in names:
                container = getattr(spec, name)
                for _ in range(CASES_PER_CONTAINER):
                    value = get_random_ssz_object(
                        rng, container, 1000, 4, RandomizationMode.mode_random, False
                    )
                    fork_version = spec.Version(rng.randbytes(4))
                    genesis_validators_root = spec.Root(rng.randbytes(32))
                    signing = []
                    for domain_name, domain_type in DOMAINS.items():
                        domain = spec.compute_domain(
                            spec.DomainType(domain_type), fork_version, genesis_validators_root
                        )
                        signing.append({
                            "domain_name": domain_name,
                            "domain": "0x" + domain.hex(),
                            "signing_root": "0x" + spec.compute_signing_root(value, domain).hex(),
                        })
                    cases.append({
                        "preset": preset,
                        "fork": fork,
                        "container": name,
                        "value": encode(value),
                        "ssz": "0x" + value.encode_bytes().hex(),
                        "root": "0x" + value.hash_tree_root().hex(),
                        "fork_version": "0x" + fork_version.hex(),
                        "genesis_validators_root": "0x" + genesis_validators_root.hex(),
                        "signing": signing,
                    })
    json.dump({"generator": "eth-consensus-specs", "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main()
