//! hash_tree_root and SSZ round trips against the consensus-spec
//! `ssz_static` vectors (minimal preset): value.yaml → roots.yaml.

use std::fmt::Debug;
use std::path::Path;

use phalanx_eth::attestation::{
    AggregateAndProofBase, AggregateAndProofElectra, AttestationBase, AttestationData,
    AttestationElectra, Checkpoint, SingleAttestation,
};
use phalanx_eth::block::{
    BeaconBlockBodyCapella, BeaconBlockBodyDeneb, BeaconBlockBodyElectra, BeaconBlockCapella,
    BeaconBlockDeneb, BeaconBlockElectra, BeaconBlockHeader,
};
use phalanx_eth::execution::{
    ExecutionPayloadCapella, ExecutionPayloadDeneb, ExecutionPayloadHeaderCapella,
    ExecutionPayloadHeaderDeneb, ExecutionRequests,
};
use phalanx_eth::signing::{ForkData, SigningData};
use phalanx_eth::sync_committee::{
    ContributionAndProof, SyncAggregatorSelectionData, SyncCommitteeContribution,
    SyncCommitteeMessage,
};
use phalanx_eth::validator::{DepositData, DepositMessage, VoluntaryExit};
use phalanx_eth::{EthSpec, MinimalEthSpec, Root};
use phalanx_test_support::vectors_dir;
use serde::de::DeserializeOwned;
use tree_hash::TreeHash;

/// The minimal preset as the vectors' commit of consensus-spec-tests
/// (0f15fd7) had it: `MAX_BLOB_COMMITMENTS_PER_BLOCK` was still 32 there;
/// the spec has since made it 4096 (see `MinimalEthSpec`, checked against
/// the current executable spec in `spec_reference.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct MinimalAt0f15fd7;

impl EthSpec for MinimalAt0f15fd7 {
    type MaxValidatorsPerCommittee = <MinimalEthSpec as EthSpec>::MaxValidatorsPerCommittee;
    type MaxCommitteesPerSlot = <MinimalEthSpec as EthSpec>::MaxCommitteesPerSlot;
    type MaxValidatorsPerSlot = <MinimalEthSpec as EthSpec>::MaxValidatorsPerSlot;
    type SyncCommitteeSize = <MinimalEthSpec as EthSpec>::SyncCommitteeSize;
    type SyncSubcommitteeSize = <MinimalEthSpec as EthSpec>::SyncSubcommitteeSize;
    type MaxWithdrawalsPerPayload = <MinimalEthSpec as EthSpec>::MaxWithdrawalsPerPayload;
    type MaxBlobCommitmentsPerBlock = ssz_types::typenum::U32;
    type MaxCellProofsPerBlock = ssz_types::typenum::U4096;
    type MaxDepositRequestsPerPayload = <MinimalEthSpec as EthSpec>::MaxDepositRequestsPerPayload;
    type MaxWithdrawalRequestsPerPayload =
        <MinimalEthSpec as EthSpec>::MaxWithdrawalRequestsPerPayload;
    type MaxConsolidationRequestsPerPayload =
        <MinimalEthSpec as EthSpec>::MaxConsolidationRequestsPerPayload;
    const NAME: &'static str = "minimal";
    const SLOTS_PER_EPOCH: u64 = MinimalEthSpec::SLOTS_PER_EPOCH;
}

type E = MinimalAt0f15fd7;

/// Checks one container of one fork: the root matches the spec's, and SSZ
/// encoding then decoding gives the same value back.
fn check<T>(fork_dir: &Path, container: &str) -> Result<(), String>
where
    T: DeserializeOwned + TreeHash + ssz::Encode + ssz::Decode + PartialEq + Debug,
{
    let case = fork_dir.join(container).join("case_0");
    let read = |file: &str| {
        std::fs::read_to_string(case.join(file))
            .map_err(|e| format!("{container}: reading {file}: {e}"))
    };
    let value: T = serde_yaml::from_str(&read("value.yaml")?)
        .map_err(|e| format!("{container}: parsing value.yaml: {e}"))?;
    let roots: serde_yaml::Value = serde_yaml::from_str(&read("roots.yaml")?)
        .map_err(|e| format!("{container}: parsing roots.yaml: {e}"))?;
    let expected: Root = roots["root"]
        .as_str()
        .ok_or(format!("{container}: roots.yaml has no root"))?
        .parse()
        .map_err(|e| format!("{container}: bad root: {e}"))?;
    let actual = value.tree_hash_root();
    if actual != expected {
        return Err(format!("{container}: root {actual} != spec {expected}"));
    }
    let decoded = T::from_ssz_bytes(&value.as_ssz_bytes())
        .map_err(|e| format!("{container}: SSZ decode of own encoding: {e:?}"))?;
    if decoded != value {
        return Err(format!("{container}: SSZ round trip changed the value"));
    }
    Ok(())
}

/// The containers every fork has, in the same layout.
fn check_common(fork_dir: &Path) -> Vec<Result<(), String>> {
    vec![
        check::<Checkpoint>(fork_dir, "Checkpoint"),
        check::<AttestationData>(fork_dir, "AttestationData"),
        check::<ForkData>(fork_dir, "ForkData"),
        check::<SigningData>(fork_dir, "SigningData"),
        check::<BeaconBlockHeader>(fork_dir, "BeaconBlockHeader"),
        check::<SyncCommitteeMessage>(fork_dir, "SyncCommitteeMessage"),
        check::<SyncCommitteeContribution<E>>(fork_dir, "SyncCommitteeContribution"),
        check::<ContributionAndProof<E>>(fork_dir, "ContributionAndProof"),
        check::<SyncAggregatorSelectionData>(fork_dir, "SyncAggregatorSelectionData"),
        check::<VoluntaryExit>(fork_dir, "VoluntaryExit"),
        check::<DepositMessage>(fork_dir, "DepositMessage"),
        check::<DepositData>(fork_dir, "DepositData"),
    ]
}

fn run(fork: &str) {
    let Some(fork_dir) = vectors_dir(&format!("ssz_static/minimal/{fork}")) else {
        return;
    };
    let mut results = check_common(&fork_dir);
    let dir = fork_dir.as_path();
    if matches!(fork, "capella" | "deneb") {
        results.push(check::<AttestationBase<E>>(dir, "Attestation"));
        results.push(check::<AggregateAndProofBase<E>>(dir, "AggregateAndProof"));
    } else {
        results.push(check::<AttestationElectra<E>>(dir, "Attestation"));
        results.push(check::<AggregateAndProofElectra<E>>(
            dir,
            "AggregateAndProof",
        ));
        results.push(check::<SingleAttestation>(dir, "SingleAttestation"));
        results.push(check::<ExecutionRequests<E>>(dir, "ExecutionRequests"));
    }
    match fork {
        "capella" => {
            results.push(check::<ExecutionPayloadCapella<E>>(dir, "ExecutionPayload"));
            results.push(check::<ExecutionPayloadHeaderCapella>(
                dir,
                "ExecutionPayloadHeader",
            ));
            results.push(check::<BeaconBlockBodyCapella<E>>(dir, "BeaconBlockBody"));
            results.push(check::<BeaconBlockCapella<E>>(dir, "BeaconBlock"));
        }
        "deneb" => {
            results.push(check::<ExecutionPayloadDeneb<E>>(dir, "ExecutionPayload"));
            results.push(check::<ExecutionPayloadHeaderDeneb>(
                dir,
                "ExecutionPayloadHeader",
            ));
            results.push(check::<BeaconBlockBodyDeneb<E>>(dir, "BeaconBlockBody"));
            results.push(check::<BeaconBlockDeneb<E>>(dir, "BeaconBlock"));
        }
        _ => {
            // Electra and Fulu share Deneb's payload and Electra's block.
            results.push(check::<ExecutionPayloadDeneb<E>>(dir, "ExecutionPayload"));
            results.push(check::<ExecutionPayloadHeaderDeneb>(
                dir,
                "ExecutionPayloadHeader",
            ));
            results.push(check::<BeaconBlockBodyElectra<E>>(dir, "BeaconBlockBody"));
            results.push(check::<BeaconBlockElectra<E>>(dir, "BeaconBlock"));
        }
    }
    // Every container the vectors hold for this fork must have been checked.
    let in_vectors = std::fs::read_dir(dir).expect("fork folder").count();
    assert_eq!(
        results.len(),
        in_vectors,
        "{fork}: a container of the vectors is not checked"
    );
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(failures.is_empty(), "{fork}: {failures:#?}");
}

#[test]
fn capella() {
    run("capella");
}

#[test]
fn deneb() {
    run("deneb");
}

#[test]
fn electra() {
    run("electra");
}

#[test]
fn fulu() {
    run("fulu");
}

#[test]
fn fork_enums_decode_by_fork_name() {
    use phalanx_eth::block::{BeaconBlock, BlindedBeaconBlock};
    use phalanx_eth::{Error, ForkName};

    let Some(dir) = vectors_dir("ssz_static/minimal/electra/BeaconBlock/case_0") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("value.yaml")).expect("value.yaml");
    let block: BeaconBlockElectra<E> = serde_yaml::from_str(&text).expect("electra block");
    let bytes = ssz::Encode::as_ssz_bytes(&block);

    for fork in [ForkName::Electra, ForkName::Fulu] {
        let decoded = BeaconBlock::<E>::from_ssz_bytes(&bytes, fork).expect("decodes");
        assert_eq!(decoded.fork_name(), fork);
        assert_eq!(decoded.slot(), block.slot);
        assert_eq!(decoded.tree_hash_root(), block.tree_hash_root());
        // A block's root is its header's root.
        assert_eq!(decoded.header().tree_hash_root(), block.tree_hash_root());
        assert_eq!(decoded.as_ssz_bytes(), bytes);

        let json = serde_json::to_value(&decoded).expect("json");
        let from_json = BeaconBlock::<E>::from_json_value(json, fork).expect("json decodes");
        assert_eq!(from_json, decoded);
    }
    // Blinded blocks begin with the builder API, at Bellatrix.
    assert_eq!(
        BlindedBeaconBlock::<E>::from_ssz_bytes(&bytes, ForkName::Altair),
        Err(Error::NotAtFork {
            container: "BlindedBeaconBlock",
            fork: ForkName::Altair
        })
    );
    assert!(matches!(
        BeaconBlock::<E>::from_ssz_bytes(&bytes[..bytes.len() / 2], ForkName::Electra),
        Err(Error::Ssz { .. })
    ));
    assert!(matches!(
        BeaconBlock::<E>::from_json_value(serde_json::json!({"slot": "1"}), ForkName::Deneb),
        Err(Error::Json { .. })
    ));
}

/// The spec's block of `fork`, decoded into the fork-aware enum.
fn spec_block(fork: &str) -> Option<phalanx_eth::block::BeaconBlock<E>> {
    use phalanx_eth::block::BeaconBlock;
    let dir = vectors_dir(&format!("ssz_static/minimal/{fork}/BeaconBlock/case_0"))?;
    let text = std::fs::read_to_string(dir.join("value.yaml")).expect("value.yaml");
    let value: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let json = serde_json::to_value(value).expect("yaml as json");
    Some(BeaconBlock::from_json_value(json, fork.parse().expect("fork")).expect("spec block"))
}

#[test]
fn blinded_blocks_keep_the_full_blocks_root() {
    for fork in ["capella", "deneb", "electra"] {
        let Some(block) = spec_block(fork) else {
            return;
        };
        let blinded_root = block.to_blinded().expect("a payload").tree_hash_root();
        assert_eq!(blinded_root, block.tree_hash_root(), "{fork}");
    }
}

#[test]
fn produce_block_v3_json_round_trips() {
    use phalanx_eth::block::{BeaconBlock, BlindedBeaconBlock};
    use phalanx_eth::block_contents::{
        Blob, BlockContents, KzgProof, ProducedBlock, ProducedBlockData, BYTES_PER_BLOB,
    };
    use phalanx_eth::ForkName;

    let Some(BeaconBlock::Electra(block)) = spec_block("electra") else {
        return;
    };
    let mut blob = vec![0u8; BYTES_PER_BLOB];
    blob[0] = 0x42;
    let contents = ProducedBlock::<E> {
        fork: ForkName::Electra,
        data: ProducedBlockData::Contents(BlockContents {
            block: BeaconBlock::Electra(block.clone()),
            kzg_proofs: vec![KzgProof::repeat_byte(7)],
            blobs: vec![Blob(blob.into())],
        }),
        execution_payload_value: alloy_primitives::U256::from(123_456_789u64),
        consensus_block_value: alloy_primitives::U256::from(42u64),
    };
    let body = serde_json::to_vec(&contents.to_json()).expect("json");
    let decoded = ProducedBlock::<E>::from_json(&body, Some(ForkName::Electra)).expect("decodes");
    assert_eq!(decoded, contents);
    assert!(
        ProducedBlock::<E>::from_json(&body, Some(ForkName::Fulu)).is_err(),
        "a header that contradicts the body is refused"
    );

    let blinded = ProducedBlock::<E> {
        fork: ForkName::Electra,
        data: ProducedBlockData::Blinded(BlindedBeaconBlock::Electra(block.to_blinded())),
        execution_payload_value: alloy_primitives::U256::from(1u64),
        consensus_block_value: alloy_primitives::U256::from(2u64),
    };
    let body = serde_json::to_vec(&blinded.to_json()).expect("json");
    assert_eq!(
        ProducedBlock::<E>::from_json(&body, None).expect("decodes"),
        blinded
    );

    let unknown = br#"{"version":"gloas","execution_payload_blinded":false,"data":{}}"#;
    assert!(matches!(
        ProducedBlock::<E>::from_json(unknown, None),
        Err(phalanx_eth::Error::UnknownFork(_))
    ));
}

#[test]
fn produced_blocks_encode_as_the_spec_containers() {
    use phalanx_eth::block::{BeaconBlock, BlindedBeaconBlock};
    use phalanx_eth::block_contents::{
        Blob, BlockContents, KzgProof, ProducedBlock, ProducedBlockData, BYTES_PER_BLOB,
    };
    use phalanx_eth::ForkName;
    use ssz_types::typenum::{U131072, U32};
    use ssz_types::{FixedVector, VariableList};

    // `BlockContents` of the beacon API, declared the plain way.
    #[derive(ssz_derive::Encode)]
    struct ReferenceContents {
        block: BeaconBlockElectra<E>,
        kzg_proofs: VariableList<KzgProof, U32>,
        blobs: VariableList<FixedVector<u8, U131072>, U32>,
    }

    let Some(BeaconBlock::Electra(block)) = spec_block("electra") else {
        return;
    };
    let blob = vec![9u8; BYTES_PER_BLOB];
    let produced = |data| ProducedBlock::<E> {
        fork: ForkName::Electra,
        data,
        execution_payload_value: alloy_primitives::U256::from(1u64),
        consensus_block_value: alloy_primitives::U256::from(2u64),
    };
    let contents = produced(ProducedBlockData::Contents(BlockContents {
        block: BeaconBlock::Electra(block.clone()),
        kzg_proofs: vec![KzgProof::repeat_byte(4)],
        blobs: vec![Blob(blob.clone().into())],
    }));
    let reference = ReferenceContents {
        block: block.clone(),
        kzg_proofs: vec![KzgProof::repeat_byte(4)].into(),
        blobs: vec![blob.into()].into(),
    };
    assert_eq!(
        contents.data_as_ssz_bytes(),
        ssz::Encode::as_ssz_bytes(&reference)
    );
    let full = produced(ProducedBlockData::Full(BeaconBlock::Electra(block.clone())));
    assert_eq!(full.data_as_ssz_bytes(), ssz::Encode::as_ssz_bytes(&block));
    let blinded_block = BlindedBeaconBlock::Electra(block.to_blinded());
    let blinded = produced(ProducedBlockData::Blinded(blinded_block.clone()));
    assert_eq!(blinded.data_as_ssz_bytes(), blinded_block.as_ssz_bytes());

    // And back, with what the headers carry.
    let one = alloy_primitives::U256::from(1u64);
    let two = alloy_primitives::U256::from(2u64);
    for (produced, is_blinded) in [(&contents, false), (&blinded, true)] {
        let bytes = produced.data_as_ssz_bytes();
        let decoded = ProducedBlock::<E>::from_ssz(&bytes, ForkName::Electra, is_blinded, one, two)
            .expect("decodes");
        assert_eq!(&decoded, produced);
    }
    // Electra's block is not Deneb's layout, and a cut body is refused.
    let bytes = contents.data_as_ssz_bytes();
    assert!(ProducedBlock::<E>::from_ssz(&bytes, ForkName::Deneb, false, one, two).is_err());
    assert!(ProducedBlock::<E>::from_ssz(
        &bytes[..bytes.len() - 1],
        ForkName::Electra,
        false,
        one,
        two
    )
    .is_err());
}

#[test]
fn signed_blocks_and_contents_encode_as_the_spec_containers() {
    use phalanx_eth::block::BeaconBlock;
    use phalanx_eth::block_contents::{
        Blob, KzgProof, SignedBeaconBlock, SignedBlockContents, BYTES_PER_BLOB,
    };
    use phalanx_eth::{Error, ForkName, SignatureBytes};
    use ssz_types::typenum::{U131072, U32};
    use ssz_types::{FixedVector, VariableList};

    // The same containers declared the plain way, encoded by ssz_derive.
    #[derive(ssz_derive::Encode)]
    struct ReferenceSigned {
        message: BeaconBlockElectra<E>,
        signature: SignatureBytes,
    }
    #[derive(ssz_derive::Encode)]
    struct ReferenceContents {
        signed_block: ReferenceSigned,
        kzg_proofs: VariableList<KzgProof, U32>,
        blobs: VariableList<FixedVector<u8, U131072>, U32>,
    }

    let Some(BeaconBlock::Electra(block)) = spec_block("electra") else {
        return;
    };
    let signature = SignatureBytes::repeat_byte(0x99);
    let signed = SignedBeaconBlock::<E> {
        message: BeaconBlock::Electra(block.clone()),
        signature,
    };
    let reference = ReferenceSigned {
        message: block.clone(),
        signature,
    };
    let bytes = signed.as_ssz_bytes();
    assert_eq!(bytes, ssz::Encode::as_ssz_bytes(&reference));
    let decoded =
        SignedBeaconBlock::<E>::from_ssz_bytes(&bytes, ForkName::Electra).expect("decodes");
    assert_eq!(decoded, signed);
    let json = serde_json::to_value(&signed).expect("json");
    assert_eq!(
        SignedBeaconBlock::<E>::from_json_value(json, ForkName::Electra).expect("json decodes"),
        signed
    );

    let mut blob = vec![0u8; BYTES_PER_BLOB];
    blob[7] = 3;
    let contents = SignedBlockContents::<E> {
        signed_block: signed.clone(),
        kzg_proofs: vec![KzgProof::repeat_byte(1), KzgProof::repeat_byte(2)],
        blobs: vec![
            Blob(blob.clone().into()),
            Blob(vec![5u8; BYTES_PER_BLOB].into()),
        ],
    };
    let reference = ReferenceContents {
        signed_block: reference,
        kzg_proofs: contents.kzg_proofs.clone().into(),
        blobs: vec![blob.into(), vec![5u8; BYTES_PER_BLOB].into()].into(),
    };
    let bytes = contents.as_ssz_bytes();
    assert_eq!(bytes, ssz::Encode::as_ssz_bytes(&reference));
    assert_eq!(
        SignedBlockContents::<E>::from_ssz_bytes(&bytes, ForkName::Electra).expect("decodes"),
        contents
    );
    let json = serde_json::to_value(&contents).expect("json");
    assert_eq!(
        SignedBlockContents::<E>::from_json_value(json, ForkName::Electra).expect("json decodes"),
        contents
    );

    // Bad input is a typed error, never a panic.
    assert!(matches!(
        SignedBlockContents::<E>::from_ssz_bytes(&bytes[..bytes.len() - 1], ForkName::Electra),
        Err(Error::Ssz { .. })
    ));
    assert!(matches!(
        SignedBlockContents::<E>::from_ssz_bytes(&bytes, ForkName::Capella),
        Err(Error::NotAtFork { .. })
    ));
    assert!(matches!(
        SignedBeaconBlock::<E>::from_ssz_bytes(&[0u8; 50], ForkName::Electra),
        Err(Error::Ssz { .. })
    ));
    let mut bad_offset = signed.as_ssz_bytes();
    bad_offset[0] = 99;
    assert!(matches!(
        SignedBeaconBlock::<E>::from_ssz_bytes(&bad_offset, ForkName::Electra),
        Err(Error::Ssz { .. })
    ));
    assert!(matches!(
        SignedBeaconBlock::<E>::from_json_value(
            serde_json::json!({"message": {}}),
            ForkName::Electra
        ),
        Err(Error::Json { .. })
    ));
}
