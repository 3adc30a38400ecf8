//! The signing root of every object the client signs, recomputed from the
//! network config and genesis as a validator client does, with the roots
//! of `phalanx_eth::signing::roots`.

use phalanx_eth::api::Genesis;
use phalanx_eth::attestation::{
    AggregateAndProof, AggregateAndProofBase, AggregateAndProofElectra, AttestationData,
};
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::signing::{application_builder_domain, compute_signing_root, roots};
use phalanx_eth::sync_committee::ContributionAndProof;
use phalanx_eth::validator::ValidatorRegistration;
use phalanx_eth::{Epoch, EthSpec, Root, Slot, Version};

/// The signing root of every object the client signs.
#[derive(Clone, Debug)]
pub(crate) struct Roots {
    pub(super) network: NetworkConfig,
    genesis_validators_root: Root,
    genesis_fork_version: Version,
}

/// An aggregate and proof of either layout, as the signing root takes it.
pub(crate) trait AggregateMessage<E: EthSpec> {
    /// The message as the layout-agnostic enum.
    fn to_message(&self) -> AggregateAndProof<E>;
}

impl<E: EthSpec> AggregateMessage<E> for AggregateAndProof<E> {
    fn to_message(&self) -> AggregateAndProof<E> {
        self.clone()
    }
}

impl<E: EthSpec> AggregateMessage<E> for AggregateAndProofBase<E> {
    fn to_message(&self) -> AggregateAndProof<E> {
        AggregateAndProof::Base(self.clone())
    }
}

impl<E: EthSpec> AggregateMessage<E> for AggregateAndProofElectra<E> {
    fn to_message(&self) -> AggregateAndProof<E> {
        AggregateAndProof::Electra(self.clone())
    }
}

impl Roots {
    /// The roots of `network` with this genesis.
    pub(crate) fn new(network: NetworkConfig, genesis_validators_root: Root) -> Roots {
        Roots {
            genesis_fork_version: network.genesis_fork_version,
            network,
            genesis_validators_root,
        }
    }

    /// The roots of `network` for the chain `genesis` describes (whose
    /// genesis fork version signs builder registrations).
    pub(super) fn from_genesis(network: NetworkConfig, genesis: &Genesis) -> Roots {
        Roots {
            network,
            genesis_validators_root: genesis.genesis_validators_root,
            genesis_fork_version: genesis.genesis_fork_version,
        }
    }

    pub(super) fn epoch(&self, slot: Slot) -> Epoch {
        slot.epoch(self.network.slots_per_epoch())
    }

    pub(crate) fn randao(&self, epoch: Epoch) -> Root {
        roots::randao(&self.network, self.genesis_validators_root, epoch)
    }

    pub(crate) fn block(&self, slot: Slot, block_root: Root) -> Root {
        roots::block(
            &self.network,
            self.genesis_validators_root,
            slot,
            block_root,
        )
    }

    pub(crate) fn attestation(&self, data: &AttestationData) -> Root {
        roots::attestation(&self.network, self.genesis_validators_root, data)
    }

    pub(crate) fn selection_proof(&self, slot: Slot) -> Root {
        roots::selection_proof(&self.network, self.genesis_validators_root, slot)
    }

    /// An aggregate and proof of the aggregate of `slot`.
    pub(crate) fn aggregate_and_proof<E: EthSpec>(
        &self,
        slot: Slot,
        message: &impl AggregateMessage<E>,
    ) -> Root {
        roots::aggregate_and_proof(
            &self.network,
            self.genesis_validators_root,
            &message.to_message(),
            slot,
        )
    }

    pub(crate) fn sync_message(&self, slot: Slot, block_root: Root) -> Root {
        roots::sync_committee_message(
            &self.network,
            self.genesis_validators_root,
            slot,
            block_root,
        )
    }

    pub(crate) fn sync_selection_proof(&self, slot: Slot, subcommittee_index: u64) -> Root {
        roots::sync_selection_proof(
            &self.network,
            self.genesis_validators_root,
            slot,
            subcommittee_index,
        )
    }

    /// A contribution and proof, in the domain of the contribution's slot.
    pub(crate) fn contribution_and_proof<E: EthSpec>(
        &self,
        message: &ContributionAndProof<E>,
    ) -> Root {
        roots::contribution_and_proof(&self.network, self.genesis_validators_root, message)
    }

    /// A builder registration. The domain takes the genesis fork version
    /// the beacon node's genesis reports (`roots::validator_registration`
    /// would take the one of the spec it serves; both come from the same
    /// node, and the client has always signed with the former).
    pub(super) fn registration(&self, registration: &ValidatorRegistration) -> Root {
        compute_signing_root(
            registration,
            application_builder_domain(self.genesis_fork_version),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_eth::attestation::{AggregateAndProofBase, AttestationBase};
    use phalanx_eth::sync_committee::SyncCommitteeContribution;
    use phalanx_eth::{
        CommitteeIndex, MinimalEthSpec, PublicKeyBytes, SignatureBytes, ValidatorIndex,
    };
    use ssz_types::BitList;

    use crate::vc::{FEE_RECIPIENT, GAS_LIMIT};
    use phalanx_eth::attestation::Checkpoint;
    use phalanx_eth::signing::{
        compute_domain, DOMAIN_AGGREGATE_AND_PROOF, DOMAIN_APPLICATION_BUILDER,
        DOMAIN_BEACON_ATTESTER, DOMAIN_BEACON_PROPOSER, DOMAIN_CONTRIBUTION_AND_PROOF,
        DOMAIN_RANDAO, DOMAIN_SELECTION_PROOF, DOMAIN_SYNC_COMMITTEE,
        DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
    };
    use phalanx_eth::sync_committee::SyncAggregatorSelectionData;
    use phalanx_eth::{Domain, DomainType};

    fn roots() -> Roots {
        // Forks at distinct epochs, so a domain taken at the wrong epoch shows.
        let yaml = "PRESET_BASE: minimal\nGENESIS_FORK_VERSION: 0x00000001\nSECONDS_PER_SLOT: 1\n\
                    ALTAIR_FORK_VERSION: 0x01000001\nALTAIR_FORK_EPOCH: 0\n\
                    BELLATRIX_FORK_VERSION: 0x02000001\nBELLATRIX_FORK_EPOCH: 0\n\
                    CAPELLA_FORK_VERSION: 0x03000001\nCAPELLA_FORK_EPOCH: 1\n\
                    DENEB_FORK_VERSION: 0x04000001\nDENEB_FORK_EPOCH: 2\n\
                    ELECTRA_FORK_VERSION: 0x05000001\nELECTRA_FORK_EPOCH: 3\n";
        Roots {
            network: NetworkConfig::from_yaml(yaml).expect("valid config"),
            genesis_validators_root: Root::repeat_byte(0x42),
            genesis_fork_version: Version::from([0, 0, 0, 1]),
        }
    }

    fn domain(domain_type: DomainType, version: [u8; 4]) -> Domain {
        compute_domain(domain_type, Version::from(version), Root::repeat_byte(0x42))
    }

    #[test]
    fn every_signing_root_uses_its_domain_at_the_right_epoch() {
        let roots = roots();
        // Minimal: 8 slots an epoch, so slot 17 is in epoch 2 (Deneb).
        let slot = Slot(17);
        let deneb = [4, 0, 0, 1];
        let block_root = Root::repeat_byte(7);
        assert_eq!(
            roots.randao(Epoch(3)),
            compute_signing_root(&Epoch(3), domain(DOMAIN_RANDAO, [5, 0, 0, 1]))
        );
        assert_eq!(
            roots.block(slot, block_root),
            compute_signing_root(&block_root, domain(DOMAIN_BEACON_PROPOSER, deneb))
        );
        assert_eq!(
            roots.selection_proof(slot),
            compute_signing_root(&slot, domain(DOMAIN_SELECTION_PROOF, deneb))
        );
        assert_eq!(
            roots.sync_message(slot, block_root),
            compute_signing_root(&block_root, domain(DOMAIN_SYNC_COMMITTEE, deneb))
        );
        let selection = SyncAggregatorSelectionData {
            slot,
            subcommittee_index: 2,
        };
        assert_eq!(
            roots.sync_selection_proof(slot, 2),
            compute_signing_root(
                &selection,
                domain(DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, deneb)
            )
        );
        // Attestations are signed at their target's epoch, not their slot's.
        let data = AttestationData {
            slot,
            index: CommitteeIndex(0),
            beacon_block_root: block_root,
            source: Checkpoint::default(),
            target: Checkpoint {
                epoch: Epoch(1),
                root: block_root,
            },
        };
        assert_eq!(
            roots.attestation(&data),
            compute_signing_root(&data, domain(DOMAIN_BEACON_ATTESTER, [3, 0, 0, 1]))
        );
        let aggregate = AggregateAndProofBase::<MinimalEthSpec> {
            aggregator_index: ValidatorIndex(3),
            aggregate: AttestationBase {
                aggregation_bits: BitList::with_capacity(4).expect("fits"),
                data,
                signature: SignatureBytes::ZERO,
            },
            selection_proof: SignatureBytes::repeat_byte(1),
        };
        assert_eq!(
            roots.aggregate_and_proof(slot, &aggregate),
            compute_signing_root(&aggregate, domain(DOMAIN_AGGREGATE_AND_PROOF, deneb))
        );
        let contribution = ContributionAndProof::<MinimalEthSpec> {
            aggregator_index: ValidatorIndex(3),
            contribution: SyncCommitteeContribution {
                slot,
                beacon_block_root: block_root,
                subcommittee_index: 1,
                aggregation_bits: Default::default(),
                signature: SignatureBytes::ZERO,
            },
            selection_proof: SignatureBytes::repeat_byte(1),
        };
        assert_eq!(
            roots.contribution_and_proof(&contribution),
            compute_signing_root(&contribution, domain(DOMAIN_CONTRIBUTION_AND_PROOF, deneb))
        );
        // Registrations: genesis version and a zero genesis validators root.
        let registration = ValidatorRegistration {
            fee_recipient: FEE_RECIPIENT,
            gas_limit: GAS_LIMIT,
            timestamp: 5,
            pubkey: PublicKeyBytes::repeat_byte(1),
        };
        assert_eq!(
            roots.registration(&registration),
            compute_signing_root(
                &registration,
                compute_domain(
                    DOMAIN_APPLICATION_BUILDER,
                    Version::from([0, 0, 0, 1]),
                    Root::ZERO
                )
            )
        );
    }
}
