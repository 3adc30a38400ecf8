//! Errors building an engine, and the reasons a received message is dropped.

/// Why an engine cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The committee size is outside 1..=MAX_COMMITTEE_SIZE.
    #[error("a committee must have 1 to {max} operators, not {0}", max = crate::MAX_COMMITTEE_SIZE)]
    CommitteeSize(u32),
    /// This operator's index is not in the committee.
    #[error("operator {0} is not a member of a committee of {1}")]
    NotMember(u32, u32),
    /// A configuration value that cannot work.
    #[error("invalid consensus configuration: {0}")]
    Config(&'static str),
}

/// Why a received message was dropped without changing any state.
///
/// [`RejectReason::is_fault`] separates what only a faulty or malicious
/// peer sends from what honest peers send in the ordinary course (late or
/// repeated messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The sender (or the transport peer) is not in the committee.
    #[error("sender {0} is not a member of the committee")]
    NotMember(u32),
    /// A signature does not verify under the sender's key.
    #[error("signature of operator {0} does not verify")]
    BadSignature(u32),
    /// The message is inconsistent in itself (wrong kind, instance or round
    /// in a justification, value not matching its hash, …).
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A justification that does not justify.
    #[error("invalid justification: {0}")]
    InvalidJustification(&'static str),
    /// A proposal from an operator that does not lead its round.
    #[error("proposal from operator {sender}, but round {round} is led by {leader}")]
    WrongLeader {
        /// Who sent it.
        sender: u32,
        /// The round it claims.
        round: u64,
        /// Who leads that round.
        leader: u32,
    },
    /// The validity predicate refused the proposed value.
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// A second, different message of the same kind and round from one sender.
    #[error("operator {0} sent two different {1} messages in one round")]
    Equivocation(u32, &'static str),
    /// The same message again.
    #[error("duplicate {0} from operator {1}")]
    Duplicate(&'static str, u32),
    /// A round too far ahead, or beyond the last round the engine runs.
    #[error("round {0} is outside the accepted window")]
    RoundOutOfRange(u64),
    /// A message for a round this node has left.
    #[error("round {0} is over")]
    OldRound(u64),
    /// The instance is outside the window of positions the engine accepts
    /// (expired, or too far in the future).
    #[error("instance outside the accepted window")]
    OutsideWindow,
    /// The per-peer buffer for instances not started yet is full (in
    /// messages or in bytes).
    #[error("buffer for operator {0} is full")]
    BufferFull(u32),
    /// A message for an instance not started yet whose slot (instance,
    /// round, sender and kind) already holds one: a network duplicate, or
    /// an equivocation the instance would refuse anyway.
    #[error("a {0} from operator {1} for this round is already buffered")]
    AlreadyBuffered(&'static str, u32),
    /// The instance's type never runs consensus (the node's randao or exit
    /// duties, for instance): no honest node sends such a message.
    #[error("instances of this type never run consensus")]
    NoConsensus,
    /// The instance is decided; the message is not needed.
    #[error("instance already decided")]
    AlreadyDecided,
    /// The sender has used up what its messages may cost this node for
    /// now (the engine's owner keeps that budget).
    #[error("the sender's budget of messages is spent")]
    OverBudget,
    /// The message carries a value of more bytes than its instance's type
    /// takes ([`crate::InstanceKey::max_value_bytes`]).
    #[error("a value of {0} bytes is larger than the instance's type takes")]
    ValueTooLarge(usize),
}

impl RejectReason {
    /// Whether only a faulty or malicious peer sends such a message.
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            RejectReason::Duplicate(..)
                | RejectReason::OldRound(_)
                | RejectReason::OutsideWindow
                | RejectReason::BufferFull(_)
                | RejectReason::AlreadyBuffered(..)
                | RejectReason::AlreadyDecided
        )
    }

    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            RejectReason::NotMember(_) => "not_member",
            RejectReason::BadSignature(_) => "bad_signature",
            RejectReason::Malformed(_) => "malformed",
            RejectReason::InvalidJustification(_) => "invalid_justification",
            RejectReason::WrongLeader { .. } => "wrong_leader",
            RejectReason::InvalidValue(_) => "invalid_value",
            RejectReason::Equivocation(..) => "equivocation",
            RejectReason::Duplicate(..) => "duplicate",
            RejectReason::RoundOutOfRange(_) => "round_out_of_range",
            RejectReason::OldRound(_) => "old_round",
            RejectReason::OutsideWindow => "outside_window",
            RejectReason::BufferFull(_) => "buffer_full",
            RejectReason::AlreadyBuffered(..) => "already_buffered",
            RejectReason::NoConsensus => "no_consensus",
            RejectReason::AlreadyDecided => "already_decided",
            RejectReason::OverBudget => "over_budget",
            RejectReason::ValueTooLarge(_) => "value_too_large",
        }
    }
}
