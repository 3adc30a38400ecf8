//! The node's errors: why the node could not start or stopped
//! ([`NodeError`]), and what is wrong with a file of its data directory.
//!
//! Each condition an operator or a caller may act on has its own variant;
//! the messages say what to check. The core's errors follow in their own
//! section: why the core dropped a peer's message ([`DropReason`],
//! [`PartialRejection`]) and why consensus refuses a value
//! ([`InvalidValue`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use phalanx_eth::client::ClientError;
use phalanx_eth::config::UnknownFork;
use phalanx_eth::{
    CommitteeIndex, Epoch, ExecutionAddress, PublicKeyBytes, Slot, ValidatorIndex, Version,
};

use crate::duty::DutyType;
use crate::slashing::{NotSafe, SlashingDbError};

/// Why the node stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node key is not one of the lock's operators.
    #[error(
        "this node key is not one of the cluster lock's operators: check the data directory's enr-private-key against the lock"
    )]
    NotAnOperator,
    /// The lock's operator records or its hash do not decode.
    #[error("{0}")]
    Lock(#[from] phalanx_dkg::DkgError),
    /// The builder registrations the cluster signed after the lock are
    /// damaged.
    #[error("{}: {problem}", path.display())]
    Registrations {
        /// The registrations file.
        path: PathBuf,
        /// What is wrong with it.
        problem: RegistrationsProblem,
    },
    /// The slashing database could not be opened.
    #[error("{0}")]
    SlashingDb(#[from] SlashingDbError),
    /// The slashing-protection history to import could not be read.
    #[error("{}: {source}", path.display())]
    SlashingHistoryRead {
        /// The history file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The slashing-protection history is not an EIP-3076 interchange.
    #[error("{}: {reason}", path.display())]
    SlashingHistoryFormat {
        /// The history file.
        path: PathBuf,
        /// The parser's complaint.
        reason: String,
    },
    /// The slashing-protection history does not import.
    #[error("importing {}: {source}", path.display())]
    SlashingHistoryImport {
        /// The history file.
        path: PathBuf,
        /// Why the database refused it.
        source: SlashingDbError,
    },
    /// The lock's validators and operators do not make a cluster.
    #[error("{0}")]
    Core(#[from] crate::core::CoreError),
    /// The beacon-node addresses are unusable.
    #[error("beacon node: {0}")]
    BeaconNode(#[source] ClientError),
    /// The beacon node is on another network than the lock's.
    #[error(
        "beacon node: the beacon node is on a network with genesis fork version {found}, the cluster lock's is {lock} ({network})"
    )]
    OtherNetwork {
        /// The genesis fork version the beacon node names.
        found: Version,
        /// The lock's genesis fork version.
        lock: Version,
        /// The lock's network name.
        network: String,
    },
    /// p2p could not start.
    #[error("p2p: {0}")]
    P2p(#[from] phalanx_p2p::StartError),
    /// The validator API could not listen.
    #[error("validator API on {address}: {source}")]
    ValidatorApi {
        /// The address asked for.
        address: SocketAddr,
        /// Why it could not be bound.
        source: std::io::Error,
    },
}

/// What is wrong with the file of builder registrations; it is refused at
/// start-up rather than half used.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationsProblem {
    /// The file could not be read.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// The file is not a map of registrations by validator.
    #[error("{0}")]
    Format(#[from] serde_json::Error),
    /// A registration of a validator outside the cluster.
    #[error("{0} is not a validator of the cluster")]
    NotInCluster(PublicKeyBytes),
    /// A registration its validator's group key did not sign.
    #[error("the registration of {0} is not signed by its key")]
    NotSigned(PublicKeyBytes),
}

/// A core could not be built: the cluster does not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The validators carry different numbers of shares.
    #[error("invalid cluster: validators have different numbers of shares")]
    SharesDiffer,
    /// More operators than an index can name.
    #[error("invalid cluster: too many operators")]
    TooManyOperators,
    /// This operator's index is not in the cluster.
    #[error("invalid cluster: operator {me} of {operators}")]
    NotAnOperator {
        /// This operator's index.
        me: phalanx_consensus::OperatorIndex,
        /// The cluster's operators.
        operators: u32,
    },
    /// A threshold of 0 or above the number of operators.
    #[error("invalid cluster: threshold {threshold} of {operators}")]
    Threshold {
        /// The threshold asked for.
        threshold: usize,
        /// The cluster's operators.
        operators: u32,
    },
    /// The consensus engine refused the committee or its configuration.
    #[error("invalid cluster: {0}")]
    Consensus(#[from] phalanx_consensus::Error),
}

/// Why the core dropped a partial signature a peer sent. The labels are
/// stable (metrics and the simulator's traces name drops by them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PartialRejection {
    /// The validator field is not a 48-byte public key.
    #[error("the validator is not a public key")]
    MalformedValidator,
    /// The validator is not one of the cluster's.
    #[error("the validator is not the cluster's")]
    UnknownValidator,
    /// The signature does not decode.
    #[error("the signature does not decode")]
    MalformedSignature,
    /// A duty type nothing is signed for in partials.
    #[error("no partials are exchanged for this duty type")]
    UnsupportedDuty,
    /// A duty more than two epochs ahead of this node's slot.
    #[error("the duty is too far ahead")]
    DutyOutOfWindow,
    /// A sync-committee message whose root is not its block root's.
    #[error("the sync-committee root does not match its block root")]
    SyncRootMismatch,
    /// A randao reveal over another root than the epoch's.
    #[error("the randao root is not the epoch's")]
    RandaoRootMismatch,
    /// A selection proof over another root than the slot's.
    #[error("the selection-proof root is not the slot's")]
    SelectionRootMismatch,
    /// A builder registration that does not name the validator, the root
    /// or the duty it comes with.
    #[error("the builder registration does not match its partial")]
    RegistrationMismatch,
    /// A partial for a duty already past every deadline (slot-bound
    /// duties two slots old, exits and registrations UNBOUND_EPOCHS old):
    /// it could no longer combine. Not a fault: an honest peer whose
    /// validator client signed late sends such partials.
    #[error("the duty has expired")]
    DutyExpired,
    /// A root other than the one this node computes from the value it
    /// decided for the duty.
    #[error("the root is not the decided value's")]
    DecidedRootMismatch,
    /// An exit over another root than the voluntary exit its duty and
    /// validator give (or a duty not at an epoch's first slot).
    #[error("the exit root is not the duty's")]
    ExitRootMismatch,
    /// A root beyond the ones a share may sign for one duty and validator
    /// (see [`crate::parsigdb::roots_per_duty`]).
    #[error("more roots for one duty and validator than the duty has")]
    TooManyRoots,
    /// The batch's signatures do not all verify under the sender's
    /// shares. Honest nodes verify their own partials before sending them,
    /// so the whole batch is dropped, without looking for the bad ones.
    #[error("the batch of partial signatures does not verify")]
    InvalidBatch,
    /// More partials in one batch, or of one duty type, than the cluster's
    /// duties can carry (see [`crate::parsigex::BatchLimits`]); refused
    /// before any signature is decoded.
    #[error("more partials in the batch than the cluster's duties carry")]
    BatchTooLarge,
    /// The sender's partials to verify this slot exceed its budget (see
    /// [`crate::parsigex::BatchLimits::budget`]); the batch is dropped
    /// unverified.
    #[error("the sender's verification budget for the slot is spent")]
    OverBudget,
    /// A second, different partial for the same duty, validator and root.
    #[error("a second, different partial for the same root")]
    EquivocatingPartial,
    /// The validator has no such duty at the slot, by the duties this
    /// node's beacon node gave for the epoch: kept, such partials could
    /// never combine. Not a fault, since after a reorganisation two beacon
    /// nodes may briefly disagree.
    #[error("the validator has no such duty at the slot")]
    Unscheduled,
}

impl PartialRejection {
    /// Whether only a faulty or malicious peer sends such a partial: an
    /// honest peer in step with the cluster signs only what decodes,
    /// verifies, lies within the window and matches the decided value, at
    /// most the roots a duty has, within the batch bounds and the budget.
    /// A partial for an expired duty is one exception (it is late), one
    /// for a duty the validator does not have by this node's beacon node
    /// the other (the beacon nodes may disagree for a moment).
    pub fn is_fault(&self) -> bool {
        match self {
            PartialRejection::DutyExpired | PartialRejection::Unscheduled => false,
            PartialRejection::MalformedValidator
            | PartialRejection::UnknownValidator
            | PartialRejection::MalformedSignature
            | PartialRejection::UnsupportedDuty
            | PartialRejection::DutyOutOfWindow
            | PartialRejection::SyncRootMismatch
            | PartialRejection::RandaoRootMismatch
            | PartialRejection::SelectionRootMismatch
            | PartialRejection::RegistrationMismatch
            | PartialRejection::DecidedRootMismatch
            | PartialRejection::ExitRootMismatch
            | PartialRejection::TooManyRoots
            | PartialRejection::InvalidBatch
            | PartialRejection::BatchTooLarge
            | PartialRejection::OverBudget
            | PartialRejection::EquivocatingPartial => true,
        }
    }

    /// A stable label for metrics and traces.
    pub fn label(&self) -> &'static str {
        match self {
            PartialRejection::MalformedValidator => "malformed_validator",
            PartialRejection::UnknownValidator => "unknown_validator",
            PartialRejection::MalformedSignature => "malformed_signature",
            PartialRejection::UnsupportedDuty => "unsupported_duty",
            PartialRejection::DutyOutOfWindow => "duty_out_of_window",
            PartialRejection::SyncRootMismatch => "sync_root_mismatch",
            PartialRejection::RandaoRootMismatch => "randao_root_mismatch",
            PartialRejection::SelectionRootMismatch => "selection_root_mismatch",
            PartialRejection::RegistrationMismatch => "registration_mismatch",
            PartialRejection::DutyExpired => "duty_expired",
            PartialRejection::DecidedRootMismatch => "decided_root_mismatch",
            PartialRejection::ExitRootMismatch => "exit_root_mismatch",
            PartialRejection::TooManyRoots => "too_many_roots",
            PartialRejection::InvalidBatch => "invalid_batch",
            PartialRejection::BatchTooLarge => "batch_too_large",
            PartialRejection::OverBudget => "over_budget",
            PartialRejection::EquivocatingPartial => "equivocating_partial",
            PartialRejection::Unscheduled => "unscheduled",
        }
    }
}

/// Why the core dropped a peer's message: a consensus message the engine
/// rejected as a fault, or a partial signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// A consensus message.
    #[error("consensus: {0}")]
    Consensus(phalanx_consensus::RejectReason),
    /// A partial signature.
    #[error("partial: {0}")]
    Partial(PartialRejection),
    /// A message whose bytes did not decode as what its protocol carries
    /// (`consensus` or `partial`).
    #[error("{0}: the bytes do not decode")]
    Undecodable(&'static str),
    /// A consensus message for a duty the cluster does not have, by the
    /// duties this node's beacon node gave: refused before the engine
    /// reads or buffers it. Not a fault (beacon nodes may disagree for a
    /// moment after a reorganisation).
    #[error("consensus: the cluster has no such duty")]
    Unscheduled,
}

impl DropReason {
    /// What was dropped (`consensus`, `partial`), as metrics name it.
    pub fn what(&self) -> &'static str {
        match self {
            DropReason::Consensus(_) => "consensus",
            DropReason::Partial(_) => "partial",
            DropReason::Undecodable(what) => what,
            DropReason::Unscheduled => "consensus",
        }
    }

    /// A stable label for metrics: the rejection's own.
    pub fn label(&self) -> &'static str {
        match self {
            DropReason::Consensus(reason) => reason.label(),
            DropReason::Partial(reason) => reason.label(),
            DropReason::Undecodable(_) => "malformed",
            DropReason::Unscheduled => PartialRejection::Unscheduled.label(),
        }
    }

    /// Whether only a faulty or malicious peer sends such a message.
    pub fn is_fault(&self) -> bool {
        match self {
            DropReason::Consensus(reason) => reason.is_fault(),
            DropReason::Partial(reason) => reason.is_fault(),
            // Operators run the same protocol version (its id says so):
            // only a faulty node sends bytes that do not decode.
            DropReason::Undecodable(_) => true,
            DropReason::Unscheduled => false,
        }
    }

    /// The penalty points a fault of this kind earns (see the runtime's
    /// penalties): one, but 120 for a batch of partials that does
    /// not verify or a message that does not decode. An honest node
    /// verifies its own partials before it sends them and encodes what
    /// its peers decode, so neither ever comes from one, and each costs
    /// this node a batch check or a decode: three disconnect the sender.
    pub fn penalty_points(&self) -> f64 {
        match self {
            DropReason::Partial(PartialRejection::InvalidBatch) | DropReason::Undecodable(_) => {
                120.0
            }
            _ => 1.0,
        }
    }
}

/// Why consensus must not agree on a proposed value: what is objectively
/// wrong with it, or what signing it would make slashable. The text goes
/// into the engine's `invalid_value` rejection, for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    /// Consensus runs on no values of this duty type.
    #[error("{} duties are not agreed on", .0.name())]
    NotAgreedOn(DutyType),
    /// The value's bytes do not decode (the decoder's text).
    #[error("{0}")]
    Malformed(String),
    /// The slot is in a fork this build does not know.
    #[error("unknown fork {}", .0.0)]
    UnknownFork(UnknownFork),
    /// Attestation data of another slot.
    #[error("data for slot {found} in slot {slot}")]
    DataSlot {
        /// The data's slot.
        found: Slot,
        /// The duty's slot.
        slot: Slot,
    },
    /// Attestation data whose target is not the slot's epoch.
    #[error("target epoch {found} in epoch {epoch}")]
    TargetEpoch {
        /// The data's target epoch.
        found: Epoch,
        /// The slot's epoch.
        epoch: Epoch,
    },
    /// Attestation data whose source is after its target.
    #[error("source after target")]
    SourceAfterTarget,
    /// Attestation data whose index is not the fork's layout (the
    /// committee before Electra, 0 from Electra on).
    #[error("committee {committee} carries index {index}")]
    DataIndex {
        /// The committee the data is listed for.
        committee: CommitteeIndex,
        /// The index the data carries.
        index: CommitteeIndex,
    },
    /// A committee without a validator of the cluster.
    #[error("committee {0} has no cluster validator")]
    NoClusterValidator(CommitteeIndex),
    /// A committee of the cluster's validators without data.
    #[error("committee {0} is missing")]
    MissingCommittee(CommitteeIndex),
    /// Signing the attestation data would be slashable for a validator.
    #[error("slashable for {validator}: {reason}")]
    SlashableAttestation {
        /// The validator's group key.
        validator: PublicKeyBytes,
        /// Why.
        reason: NotSafe,
    },
    /// An aggregate of another slot.
    #[error("an aggregate of slot {found} in slot {slot}")]
    AggregateSlot {
        /// The aggregate's slot.
        found: Slot,
        /// The duty's slot.
        slot: Slot,
    },
    /// An Electra aggregate whose committee bits name other than one
    /// committee.
    #[error("an aggregate must cover exactly one committee, this one covers {0}")]
    AggregateCommittees(usize),
    /// An aggregate listed for one committee covering another.
    #[error("the aggregate listed for committee {0} covers another")]
    AggregateOtherCommittee(CommitteeIndex),
    /// Attestation data with a non-zero index from Electra on.
    #[error("from Electra on attestation data carries index 0")]
    ElectraDataIndex,
    /// An aggregate without an attester.
    #[error("the aggregate of committee {0} has no attester")]
    NoAttester(CommitteeIndex),
    /// An aggregate whose bits are not the committee's length.
    #[error("the aggregate of committee {committee} has {length} bits, the committee {expected} members")]
    AggregateLength {
        /// The committee.
        committee: CommitteeIndex,
        /// The aggregate's bits.
        length: usize,
        /// The committee's members.
        expected: u64,
    },
    /// An aggregate over other attestation data than the cluster decided.
    #[error("the aggregate of committee {0} is not over the attestation data the cluster decided")]
    NotDecidedData(CommitteeIndex),
    /// A contribution of another slot.
    #[error("a contribution of slot {found} in slot {slot}")]
    ContributionSlot {
        /// The contribution's slot.
        found: Slot,
        /// The duty's slot.
        slot: Slot,
    },
    /// A subcommittee out of range or not its contribution's.
    #[error("subcommittee {0} does not match its contribution")]
    Subcommittee(u64),
    /// A contribution without a member.
    #[error("the contribution of subcommittee {0} has no member")]
    NoMember(u64),
    /// A block of another slot.
    #[error("a block of slot {found} in slot {slot}")]
    BlockSlot {
        /// The block's slot.
        found: Slot,
        /// The duty's slot.
        slot: Slot,
    },
    /// No validator of the cluster proposes at the slot.
    #[error("no validator of this cluster proposes at slot {0}")]
    NoProposer(Slot),
    /// The block names another proposer than the cluster's.
    #[error("the block's proposer is {found}, the cluster's is {expected}")]
    OtherProposer {
        /// The block's proposer.
        found: ValidatorIndex,
        /// The cluster's proposer.
        expected: ValidatorIndex,
    },
    /// The randao reveal does not verify under the proposer's group key.
    #[error("the randao reveal does not verify under the proposer's key")]
    RandaoReveal,
    /// A local payload paying another fee recipient than the lock's.
    #[error("the payload pays {found}, the lock says {expected}")]
    FeeRecipient {
        /// The payload's fee recipient.
        found: ExecutionAddress,
        /// The lock's.
        expected: ExecutionAddress,
    },
    /// Not the fork's number of proofs per blob.
    #[error("{proofs} proofs for {blobs} blobs")]
    ProofsForBlobs {
        /// The proofs.
        proofs: usize,
        /// The blobs.
        blobs: usize,
    },
    /// Signing the block would be slashable.
    #[error("slashable: {0}")]
    SlashableBlock(NotSafe),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that do not decode are a fault worth as much as a batch that
    /// does not verify, counted as `malformed` of what they claimed to be.
    #[test]
    fn undecodable_bytes_are_a_costly_fault() {
        let reason = DropReason::Undecodable("partial");
        assert!(reason.is_fault());
        assert_eq!((reason.what(), reason.label()), ("partial", "malformed"));
        assert_eq!(
            reason.penalty_points(),
            DropReason::Partial(PartialRejection::InvalidBatch).penalty_points()
        );
        assert!(reason.penalty_points() > 100.0);
    }

    #[test]
    fn messages_name_what_to_check() {
        let refused = NodeError::Registrations {
            path: PathBuf::from("/data/builder-registrations.json"),
            problem: RegistrationsProblem::NotSigned(PublicKeyBytes::repeat_byte(1)),
        };
        let text = refused.to_string();
        assert!(
            text.starts_with("/data/builder-registrations.json: the registration of 0x0101"),
            "{text}"
        );
        assert!(text.ends_with("is not signed by its key"), "{text}");
        let other = NodeError::OtherNetwork {
            found: Version::from([1, 0, 0, 0]),
            lock: Version::from([0, 0, 0, 0]),
            network: "mainnet".into(),
        };
        assert_eq!(
            other.to_string(),
            "beacon node: the beacon node is on a network with genesis fork version 0x01000000, the cluster lock's is 0x00000000 (mainnet)"
        );
    }

    #[test]
    fn drop_labels_are_the_metrics_labels() {
        let invalid = DropReason::Partial(PartialRejection::InvalidBatch);
        assert_eq!(
            (invalid.what(), invalid.label()),
            ("partial", "invalid_batch")
        );
        assert!(invalid.is_fault());
        // A late partial is not a fault; an excess one is.
        assert!(!PartialRejection::DutyExpired.is_fault());
        for fault in [
            PartialRejection::BatchTooLarge,
            PartialRejection::OverBudget,
            PartialRejection::TooManyRoots,
            PartialRejection::DecidedRootMismatch,
            PartialRejection::ExitRootMismatch,
        ] {
            assert!(fault.is_fault(), "{fault}");
        }
        let late = DropReason::Consensus(phalanx_consensus::RejectReason::AlreadyDecided);
        assert_eq!(
            (late.what(), late.label()),
            ("consensus", "already_decided")
        );
        assert!(!late.is_fault());
        assert_eq!(
            PartialRejection::DutyOutOfWindow.label(),
            "duty_out_of_window"
        );
    }

    #[test]
    fn invalid_values_read_as_before() {
        assert_eq!(
            InvalidValue::NotAgreedOn(DutyType::Exit).to_string(),
            format!("{} duties are not agreed on", DutyType::Exit.name())
        );
        assert_eq!(
            InvalidValue::DataSlot {
                found: Slot(3),
                slot: Slot(4)
            }
            .to_string(),
            "data for slot 3 in slot 4"
        );
        assert_eq!(
            InvalidValue::UnknownFork(UnknownFork("gloas".into())).to_string(),
            "unknown fork gloas"
        );
        assert_eq!(
            InvalidValue::ProofsForBlobs {
                proofs: 1,
                blobs: 2
            }
            .to_string(),
            "1 proofs for 2 blobs"
        );
    }
}
