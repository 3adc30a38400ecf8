//! Fuzz targets for every decoder that a peer or a validator client can
//! reach: p2p frames, QBFT messages, partial-signature batches, peerinfo,
//! key-generation messages, cluster definitions and locks, keystores, ENRs,
//! and the validator API's bodies in JSON and SSZ.
//!
//! Each target takes arbitrary bytes and must return without panicking,
//! and no allocation it makes may exceed the target's limit (the
//! protocol's or the file's bound). [`Guard`], installed as the global
//! allocator of a harness, records the largest single allocation and
//! refuses any above [`HARD_CAP`], so that a decoder that trusts a length
//! fails here instead of taking the machine's memory.
//!
//! Two harnesses use the targets: the corpus replay in this crate's tests
//! (CI), and the coverage-guided runs under `fuzz/afl` (a bench).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use phalanx_consensus::Wire;
use phalanx_eth::{ForkName, MainnetEthSpec};
use phalanx_node::api::fuzzing::{self, Body};
use phalanx_node::duty::Duty;
use phalanx_node::parsigex::{parsigex_protocol, PartialBatch};
use phalanx_node::qbft::{consensus_protocol, decode_consensus};
use phalanx_node::value::{decode_attestation_data, decode_entries, DutyValue};

/// No harness allocation may ever exceed this, whatever the target.
pub const HARD_CAP: usize = 1 << 30;

thread_local! {
    /// The largest single request of this thread since [`reset`] (a
    /// constant-initialised cell: reading it never allocates).
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

/// The system allocator, recording each thread's largest single request
/// since [`reset`] and refusing those above [`HARD_CAP`].
pub struct Guard;

// SAFETY: every call is passed to the system allocator unchanged, except
// requests above the cap, which get a null pointer (allocation failure).
unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        if layout.size() > HARD_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        if layout.size() > HARD_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        if new_size > HARD_CAP {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Forgets the largest allocation this thread made.
pub fn reset() {
    LARGEST.with(|largest| largest.set(0));
}

/// The largest single allocation this thread made since [`reset`] (only
/// with [`Guard`] installed).
pub fn largest() -> usize {
    LARGEST.with(Cell::get)
}

/// One decoder under test.
pub struct Target {
    /// Its name, also its corpus folder under `fuzz/corpus/`.
    pub name: &'static str,
    /// Runs the decoder on arbitrary bytes.
    pub run: fn(&[u8]),
    /// The largest single allocation allowed for an input of this length.
    pub limit: fn(usize) -> usize,
}

/// The blobs per block the consensus limit is sized for in these targets
/// (Electra's maximum on mainnet).
const MAX_BLOBS: u64 = 9;
/// A p2p frame's limit in the frame target.
const FRAME_LIMIT: usize = 1 << 20;
/// What a peerinfo record may take ([`phalanx_p2p::PeerInfo`]'s limit).
const PEERINFO_LIMIT: usize = 512;

/// What serde lets a decoder allocate for a sequence before its announced
/// length is checked against the input: its "cautious" size hint
/// preallocates up to 1 MiB. A bincode decoder of a protocol whose limit
/// is below that may therefore take 1 MiB for a few bytes of input, and
/// give it back when the input runs out; no more, whatever the length.
const SEQUENCE_PREALLOCATION: usize = 1 << 20;

/// A bincode decoder's limit: the protocol's, or serde's preallocation.
fn binary_limit(protocol: usize) -> usize {
    protocol.max(SEQUENCE_PREALLOCATION)
}

/// A decoder of JSON or text input allocates at most a small multiple of
/// its input (strings, numbers, the parsed tree), plus fixed tables.
fn text_limit(len: usize) -> usize {
    len.saturating_mul(16).saturating_add(1 << 20)
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "p2p_frame",
        run: p2p_frame,
        limit: |_| binary_limit(FRAME_LIMIT),
    },
    Target {
        name: "qbft_message",
        run: qbft_message,
        limit: |_| binary_limit(consensus_protocol(MAX_BLOBS).max_size),
    },
    Target {
        name: "partial_batch",
        run: partial_batch,
        limit: |_| binary_limit(parsigex_protocol().max_size),
    },
    Target {
        name: "peerinfo",
        run: peerinfo,
        limit: |_| binary_limit(PEERINFO_LIMIT),
    },
    Target {
        name: "dkg_envelope",
        run: dkg_envelope,
        limit: |_| binary_limit(dkg_limit()),
    },
    Target {
        name: "cluster_definition",
        run: cluster_definition,
        limit: text_limit,
    },
    Target {
        name: "cluster_lock",
        run: cluster_lock,
        limit: text_limit,
    },
    Target {
        name: "keystore",
        run: keystore,
        limit: text_limit,
    },
    Target {
        name: "enr",
        run: enr,
        limit: text_limit,
    },
    Target {
        name: "validator_api",
        run: validator_api,
        limit: text_limit,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Runs `target` on `data` and checks its largest allocation against its
/// limit; the error names both.
pub fn check(target: &Target, data: &[u8]) -> Result<(), String> {
    reset();
    (target.run)(data);
    let (largest, limit) = (largest(), (target.limit)(data.len()));
    if largest > limit {
        return Err(format!(
            "{}: an allocation of {largest} bytes, beyond the limit of {limit} for {} input bytes",
            target.name,
            data.len()
        ));
    }
    Ok(())
}

fn p2p_frame(data: &[u8]) {
    let mut reader = futures::io::Cursor::new(data);
    if let Ok(body) = futures::executor::block_on(phalanx_p2p::read_frame(&mut reader, FRAME_LIMIT))
    {
        assert!(body.len() <= FRAME_LIMIT);
    }
}

fn qbft_message(data: &[u8]) {
    let limit = consensus_protocol(MAX_BLOBS).max_size;
    if data.len() > limit {
        return;
    }
    // The node reads a value in place, in its frame; it must read what
    // the copying decoder reads, and refuse what it refuses.
    let copied = phalanx_p2p::decode::<Wire<Duty, DutyValue>>(data, limit);
    let in_place = decode_consensus(data.to_vec(), limit);
    let message = match (copied, in_place) {
        (Ok(copied), Ok(in_place)) => {
            assert_eq!(
                phalanx_p2p::encode(&copied, limit).ok(),
                phalanx_p2p::encode(&in_place, limit).ok(),
                "the decoders read different messages"
            );
            in_place
        }
        (Err(_), Err(_)) => return,
        (copied, in_place) => panic!(
            "the decoders disagree: copying {:?}, in place {:?}",
            copied.is_ok(),
            in_place.is_ok()
        ),
    };
    let _ = (message.instance(), message.kind_name());
    let value = match &message {
        Wire::Proposal { value, .. } | Wire::Decided { value, .. } => Some(value),
        Wire::RoundChange {
            prepared: Some(certificate),
            ..
        } => Some(&certificate.value),
        _ => None,
    };
    if let Some(value) = value {
        let _ = decode_attestation_data(value);
        let _ = decode_entries(value);
    }
}

fn partial_batch(data: &[u8]) {
    let limit = parsigex_protocol().max_size;
    if let Ok(PartialBatch(partials)) = phalanx_p2p::decode::<PartialBatch>(data, limit) {
        for partial in &partials {
            let _ = (partial.duty.kind.name(), partial.validator.len());
        }
    }
}

fn peerinfo(data: &[u8]) {
    let _ = phalanx_p2p::decode::<phalanx_p2p::PeerInfo>(data, PEERINFO_LIMIT);
}

/// A large key-generation ceremony: 10 operators, threshold 7, 100 validators.
fn dkg_limit() -> usize {
    phalanx_dkg::ceremony::max_envelope_size(10, 7, 100)
}

fn dkg_envelope(data: &[u8]) {
    let _ = phalanx_p2p::decode::<phalanx_dkg::ceremony::Envelope>(data, dkg_limit());
}

fn cluster_definition(data: &[u8]) {
    if let Ok(definition) = serde_json::from_slice::<phalanx_dkg::ClusterDefinition>(data) {
        let _ = definition.validate();
    }
}

fn cluster_lock(data: &[u8]) {
    if let Ok(lock) = serde_json::from_slice::<phalanx_dkg::ClusterLock>(data) {
        let _ = lock.verify();
    }
}

fn keystore(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = phalanx_crypto::keystore::Keystore::from_json(text);
    }
}

fn enr(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<phalanx_p2p::Enr>();
    }
}

/// The first byte picks the route, the second the encoding (bit 0: SSZ)
/// and the fork (the rest, modulo the forks); the body follows.
fn validator_api(data: &[u8]) {
    let [route, mode, body @ ..] = data else {
        return;
    };
    let which = Body::ALL[usize::from(*route) % Body::ALL.len()];
    let ssz = mode & 1 == 1;
    let fork = ForkName::ALL[usize::from(mode >> 1) % ForkName::ALL.len()];
    let _ = fuzzing::decode::<MainnetEthSpec>(which, body, ssz, fork);
}
