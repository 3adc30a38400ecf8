//! Signing roots and domains: exactly which 32 bytes a validator signs for
//! each duty.
//!
//! signing_root = hash_tree_root(SigningData { object_root, domain })
//! domain       = domain_type ‖ hash_tree_root(ForkData { version, genesis_validators_root })[..28]

use alloy_primitives::FixedBytes;
use serde::{Deserialize, Serialize};
use ssz_derive::{Decode, Encode};
use tree_hash::TreeHash;
use tree_hash_derive::TreeHash;

use crate::fork::ForkName;
use crate::primitives::{Domain, DomainType, Root, Version};

/// `DOMAIN_BEACON_PROPOSER`: blocks.
pub const DOMAIN_BEACON_PROPOSER: DomainType = FixedBytes([0, 0, 0, 0]);
/// `DOMAIN_BEACON_ATTESTER`: attestations.
pub const DOMAIN_BEACON_ATTESTER: DomainType = FixedBytes([1, 0, 0, 0]);
/// `DOMAIN_RANDAO`: the randao reveal of a block.
pub const DOMAIN_RANDAO: DomainType = FixedBytes([2, 0, 0, 0]);
/// `DOMAIN_DEPOSIT`: deposit messages.
pub const DOMAIN_DEPOSIT: DomainType = FixedBytes([3, 0, 0, 0]);
/// `DOMAIN_VOLUNTARY_EXIT`: voluntary exits.
pub const DOMAIN_VOLUNTARY_EXIT: DomainType = FixedBytes([4, 0, 0, 0]);
/// `DOMAIN_SELECTION_PROOF`: the slot signature that elects an aggregator.
pub const DOMAIN_SELECTION_PROOF: DomainType = FixedBytes([5, 0, 0, 0]);
/// `DOMAIN_AGGREGATE_AND_PROOF`: aggregates.
pub const DOMAIN_AGGREGATE_AND_PROOF: DomainType = FixedBytes([6, 0, 0, 0]);
/// `DOMAIN_SYNC_COMMITTEE`: sync-committee messages.
pub const DOMAIN_SYNC_COMMITTEE: DomainType = FixedBytes([7, 0, 0, 0]);
/// `DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF`: the selection of contribution aggregators.
pub const DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF: DomainType = FixedBytes([8, 0, 0, 0]);
/// `DOMAIN_CONTRIBUTION_AND_PROOF`: sync-committee contributions.
pub const DOMAIN_CONTRIBUTION_AND_PROOF: DomainType = FixedBytes([9, 0, 0, 0]);
/// `DOMAIN_APPLICATION_BUILDER` (builder specs): validator registrations.
pub const DOMAIN_APPLICATION_BUILDER: DomainType = FixedBytes([0, 0, 0, 1]);

/// `ForkData`: what a domain commits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct ForkData {
    /// The fork version in force.
    pub current_version: Version,
    /// The chain's genesis validators root.
    pub genesis_validators_root: Root,
}

/// `SigningData`: an object root bound to its domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct SigningData {
    /// hash_tree_root of the signed object.
    pub object_root: Root,
    /// The domain it is signed in.
    pub domain: Domain,
}

/// `compute_fork_data_root`.
pub fn compute_fork_data_root(current_version: Version, genesis_validators_root: Root) -> Root {
    ForkData {
        current_version,
        genesis_validators_root,
    }
    .tree_hash_root()
}

/// `compute_domain`.
pub fn compute_domain(
    domain_type: DomainType,
    fork_version: Version,
    genesis_validators_root: Root,
) -> Domain {
    let fork_data_root = compute_fork_data_root(fork_version, genesis_validators_root);
    let mut domain = [0u8; 32];
    domain[..4].copy_from_slice(domain_type.as_slice());
    domain[4..].copy_from_slice(&fork_data_root[..28]);
    Domain::from(domain)
}

/// `compute_signing_root`: the 32 bytes actually signed.
pub fn compute_signing_root<T: TreeHash + ?Sized>(object: &T, domain: Domain) -> Root {
    SigningData {
        object_root: object.tree_hash_root(),
        domain,
    }
    .tree_hash_root()
}

/// The domain of deposits: the genesis fork version and a zero genesis
/// validators root, so deposits are valid before genesis.
pub fn deposit_domain(genesis_fork_version: Version) -> Domain {
    compute_domain(DOMAIN_DEPOSIT, genesis_fork_version, Root::ZERO)
}

/// The domain of builder registrations, fixed like the deposit domain.
pub fn application_builder_domain(genesis_fork_version: Version) -> Domain {
    compute_domain(DOMAIN_APPLICATION_BUILDER, genesis_fork_version, Root::ZERO)
}

/// The domain of voluntary exits. From Deneb on (EIP-7044) it is fixed to
/// the Capella fork version, so a signed exit stays valid forever.
pub fn voluntary_exit_domain(
    fork: ForkName,
    fork_version: Version,
    capella_fork_version: Version,
    genesis_validators_root: Root,
) -> Domain {
    let version = if fork >= ForkName::Deneb {
        capella_fork_version
    } else {
        fork_version
    };
    compute_domain(DOMAIN_VOLUNTARY_EXIT, version, genesis_validators_root)
}

/// The signing roots of the validator duties, each in the domain of its
/// epoch on `network` (see [`NetworkConfig::domain_at`]).
///
/// [`NetworkConfig::domain_at`]: crate::config::NetworkConfig::domain_at
pub mod roots {
    use super::*;
    use crate::attestation::{AggregateAndProof, AttestationData};
    use crate::config::NetworkConfig;
    use crate::preset::EthSpec;
    use crate::primitives::{Epoch, Slot};
    use crate::sync_committee::{ContributionAndProof, SyncAggregatorSelectionData};
    use crate::validator::{ValidatorRegistration, VoluntaryExit};

    /// An attestation: the data, in the domain of its target epoch.
    pub fn attestation(
        network: &NetworkConfig,
        genesis_validators_root: Root,
        data: &AttestationData,
    ) -> Root {
        let domain = network.domain_at(
            DOMAIN_BEACON_ATTESTER,
            data.target.epoch,
            genesis_validators_root,
        );
        compute_signing_root(data, domain)
    }

    /// A block (full or blinded: the same root), by its root.
    pub fn block(
        network: &NetworkConfig,
        genesis_validators_root: Root,
        slot: Slot,
        block_root: Root,
    ) -> Root {
        let epoch = slot.epoch(network.slots_per_epoch());
        compute_signing_root(
            &block_root,
            network.domain_at(DOMAIN_BEACON_PROPOSER, epoch, genesis_validators_root),
        )
    }

    /// A randao reveal: the epoch.
    pub fn randao(network: &NetworkConfig, genesis_validators_root: Root, epoch: Epoch) -> Root {
        compute_signing_root(
            &epoch,
            network.domain_at(DOMAIN_RANDAO, epoch, genesis_validators_root),
        )
    }

    /// A sync-committee message: the head's block root.
    pub fn sync_committee_message(
        network: &NetworkConfig,
        genesis_validators_root: Root,
        slot: Slot,
        block_root: Root,
    ) -> Root {
        let domain = network.domain_at(
            DOMAIN_SYNC_COMMITTEE,
            slot.epoch(network.slots_per_epoch()),
            genesis_validators_root,
        );
        compute_signing_root(&block_root, domain)
    }

    /// An aggregation selection proof: the slot.
    pub fn selection_proof(
        network: &NetworkConfig,
        genesis_validators_root: Root,
        slot: Slot,
    ) -> Root {
        let domain = network.domain_at(
            DOMAIN_SELECTION_PROOF,
            slot.epoch(network.slots_per_epoch()),
            genesis_validators_root,
        );
        compute_signing_root(&slot, domain)
    }

    /// A sync-contribution selection proof: slot and subcommittee.
    pub fn sync_selection_proof(
        network: &NetworkConfig,
        genesis_validators_root: Root,
        slot: Slot,
        subcommittee_index: u64,
    ) -> Root {
        let domain = network.domain_at(
            DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
            slot.epoch(network.slots_per_epoch()),
            genesis_validators_root,
        );
        let data = SyncAggregatorSelectionData {
            slot,
            subcommittee_index,
        };
        compute_signing_root(&data, domain)
    }

    /// An aggregate and proof, in the domain of the aggregate's `slot`.
    pub fn aggregate_and_proof<E: EthSpec>(
        network: &NetworkConfig,
        genesis_validators_root: Root,
        message: &AggregateAndProof<E>,
        slot: Slot,
    ) -> Root {
        let domain = network.domain_at(
            DOMAIN_AGGREGATE_AND_PROOF,
            slot.epoch(network.slots_per_epoch()),
            genesis_validators_root,
        );
        compute_signing_root(&message.tree_hash_root(), domain)
    }

    /// A contribution and proof, in the domain of the contribution's slot.
    pub fn contribution_and_proof<E: EthSpec>(
        network: &NetworkConfig,
        genesis_validators_root: Root,
        message: &ContributionAndProof<E>,
    ) -> Root {
        let domain = network.domain_at(
            DOMAIN_CONTRIBUTION_AND_PROOF,
            message.contribution.slot.epoch(network.slots_per_epoch()),
            genesis_validators_root,
        );
        compute_signing_root(message, domain)
    }

    /// A voluntary exit as a chain at `current` verifies it: the Capella
    /// version from Deneb on (EIP-7044), before that the version of the
    /// exit's epoch. A current fork unknown to this build counts as
    /// [`ForkName::LATEST`].
    pub fn voluntary_exit(
        network: &NetworkConfig,
        genesis_validators_root: Root,
        exit: &VoluntaryExit,
        current: Slot,
    ) -> Root {
        let fork = network.layout_fork_at_slot(current);
        let capella = network
            .fork_version(ForkName::Capella)
            .unwrap_or_else(|| network.fork_version_at(exit.epoch));
        let domain = voluntary_exit_domain(
            fork,
            network.fork_version_at(exit.epoch),
            capella,
            genesis_validators_root,
        );
        compute_signing_root(exit, domain)
    }

    /// A builder registration, in the fixed builder domain.
    pub fn validator_registration(
        network: &NetworkConfig,
        message: &ValidatorRegistration,
    ) -> Root {
        compute_signing_root(
            message,
            application_builder_domain(network.genesis_fork_version),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_type_then_fork_data_root_prefix() {
        let version = Version::from([1, 2, 3, 4]);
        let gvr = Root::repeat_byte(9);
        let domain = compute_domain(DOMAIN_SELECTION_PROOF, version, gvr);
        assert_eq!(&domain[..4], &[5, 0, 0, 0]);
        assert_eq!(&domain[4..], &compute_fork_data_root(version, gvr)[..28]);
    }

    #[test]
    fn mainnet_deposit_domain_is_the_known_constant() {
        // The mainnet deposit domain every launchpad deposit is signed in.
        let domain = deposit_domain(Version::ZERO);
        assert_eq!(
            hex::encode(domain),
            "03000000f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9"
        );
    }

    #[test]
    fn duty_roots_sign_in_their_epochs_domain() {
        use crate::config::NetworkConfig;
        use crate::primitives::{Epoch, Slot};
        let network = NetworkConfig::devnet(ForkName::Electra, 12_000);
        let spe = network.slots_per_epoch();
        let gvr = Root::repeat_byte(3);
        let slot = Slot(3 * spe + 1);
        assert_eq!(
            roots::selection_proof(&network, gvr, slot),
            compute_signing_root(
                &slot,
                network.domain_at(DOMAIN_SELECTION_PROOF, Epoch(3), gvr)
            )
        );
        assert_eq!(
            roots::randao(&network, gvr, Epoch(3)),
            compute_signing_root(&Epoch(3), network.domain_at(DOMAIN_RANDAO, Epoch(3), gvr))
        );
        let block_root = Root::repeat_byte(8);
        assert_eq!(
            roots::block(&network, gvr, slot, block_root),
            compute_signing_root(
                &block_root,
                network.domain_at(DOMAIN_BEACON_PROPOSER, Epoch(3), gvr)
            )
        );
        // The same head in the sync-committee domain signs something else.
        assert_ne!(
            roots::sync_committee_message(&network, gvr, slot, block_root),
            roots::block(&network, gvr, slot, block_root)
        );
    }

    #[test]
    fn exits_use_the_capella_version_from_deneb_on() {
        let capella = Version::from([3, 0, 0, 0]);
        let electra = Version::from([5, 0, 0, 0]);
        let gvr = Root::repeat_byte(1);
        assert_eq!(
            voluntary_exit_domain(ForkName::Electra, electra, capella, gvr),
            compute_domain(DOMAIN_VOLUNTARY_EXIT, capella, gvr)
        );
        assert_eq!(
            voluntary_exit_domain(ForkName::Capella, capella, capella, gvr),
            compute_domain(DOMAIN_VOLUNTARY_EXIT, capella, gvr)
        );
    }
}
