//! Roots and signing roots against the official executable consensus spec
//! (PyPI `eth-consensus-specs`), in the mainnet and minimal presets:
//! `eth/tests/spec_reference/generate.py` writes random values of every
//! container with the spec's roots, `.ci/run` points
//! `PHALANX_SPEC_REFERENCE` at its output, and this test checks each case:
//! the root, the SSZ round trip, the beacon-API JSON form (integers quoted)
//! and its round trip, and the domain and signing root in every duty domain.
//!
//! The beacon-API JSON is also compared with a real client's: for the
//! cases from Phase 0 to Capella, `eth/tests/lodestar_reference/generate.mjs` has Lodestar's
//! SSZ types write each value's JSON and root (`PHALANX_LODESTAR_REFERENCE`
//! names the folder), and Phalanx must write exactly that JSON and read it
//! back to the same value.

use std::fmt::Debug;

use phalanx_eth::attestation::{
    AggregateAndProofBase, AggregateAndProofElectra, AttestationBase, AttestationData,
    AttestationElectra, Checkpoint, SignedAggregateAndProofBase, SignedAggregateAndProofElectra,
    SingleAttestation,
};
use phalanx_eth::block::{
    AttesterSlashingBase, AttesterSlashingElectra, BeaconBlock, BeaconBlockAltair,
    BeaconBlockBellatrix, BeaconBlockBodyAltair, BeaconBlockBodyBellatrix, BeaconBlockBodyCapella,
    BeaconBlockBodyDeneb, BeaconBlockBodyElectra, BeaconBlockBodyPhase0, BeaconBlockCapella,
    BeaconBlockDeneb, BeaconBlockElectra, BeaconBlockHeader, BeaconBlockPhase0,
    BlsToExecutionChange, Deposit, Eth1Data, IndexedAttestationBase, IndexedAttestationElectra,
    ProposerSlashing, SignedBeaconBlockHeader, SignedBlsToExecutionChange, SyncAggregate,
};
use phalanx_eth::execution::{
    ConsolidationRequest, DepositRequest, ExecutionPayloadBellatrix, ExecutionPayloadCapella,
    ExecutionPayloadDeneb, ExecutionPayloadHeaderBellatrix, ExecutionPayloadHeaderCapella,
    ExecutionPayloadHeaderDeneb, ExecutionRequests, Withdrawal, WithdrawalRequest,
};
use phalanx_eth::signing::{compute_domain, compute_signing_root, ForkData, SigningData};
use phalanx_eth::sync_committee::{
    ContributionAndProof, SignedContributionAndProof, SyncAggregatorSelectionData,
    SyncCommitteeContribution, SyncCommitteeMessage,
};
use phalanx_eth::validator::{DepositData, DepositMessage, SignedVoluntaryExit, VoluntaryExit};
use phalanx_eth::{DomainType, EthSpec, ForkName, MainnetEthSpec, MinimalEthSpec, Root, Version};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tree_hash::TreeHash;

fn domain_type(name: &str) -> DomainType {
    let bytes: [u8; 4] = match name {
        "beacon_proposer" => [0, 0, 0, 0],
        "beacon_attester" => [1, 0, 0, 0],
        "randao" => [2, 0, 0, 0],
        "deposit" => [3, 0, 0, 0],
        "voluntary_exit" => [4, 0, 0, 0],
        "selection_proof" => [5, 0, 0, 0],
        "aggregate_and_proof" => [6, 0, 0, 0],
        "sync_committee" => [7, 0, 0, 0],
        "sync_committee_selection_proof" => [8, 0, 0, 0],
        "contribution_and_proof" => [9, 0, 0, 0],
        "application_builder" => [0, 0, 0, 1],
        other => panic!("unknown domain {other}"),
    };
    DomainType::from(bytes)
}

fn parse<T: std::str::FromStr>(case: &Value, field: &str) -> T
where
    T::Err: Debug,
{
    case[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing"))
        .parse()
        .unwrap_or_else(|e| panic!("{field}: {e:?}"))
}

/// Checks one case: decoding, root, SSZ round trip, domain and signing root
/// in every domain.
fn check<T>(case: &Value) -> Result<(), String>
where
    T: DeserializeOwned
        + serde::Serialize
        + TreeHash
        + ssz::Encode
        + ssz::Decode
        + PartialEq
        + Debug,
{
    if case.get("json").is_some() {
        return check_lodestar::<T>(case);
    }
    let value: T =
        serde_json::from_value(case["value"].clone()).map_err(|e| format!("decode: {e}"))?;
    let root: Root = parse(case, "root");
    if value.tree_hash_root() != root {
        return Err(format!("root {} != spec {root}", value.tree_hash_root()));
    }
    if T::from_ssz_bytes(&value.as_ssz_bytes()).as_ref() != Ok(&value) {
        return Err("SSZ round trip changed the value".into());
    }
    // Beacon-API JSON: every integer quoted, and it reads back unchanged.
    let api_json = serde_json::to_value(&value).map_err(|e| format!("encode: {e}"))?;
    if let Some(number) = first_number(&api_json) {
        return Err(format!("beacon-API JSON has an unquoted number {number}"));
    }
    let back: T = serde_json::from_value(api_json).map_err(|e| format!("re-decode: {e}"))?;
    if back != value {
        return Err("beacon-API JSON round trip changed the value".into());
    }
    let version: Version = parse(case, "fork_version");
    let genesis_validators_root: Root = parse(case, "genesis_validators_root");
    for signing in case["signing"].as_array().ok_or("no signing roots")? {
        let name = signing["domain_name"].as_str().ok_or("domain name")?;
        let domain = compute_domain(domain_type(name), version, genesis_validators_root);
        let expected_domain: Root = parse(signing, "domain");
        if domain != expected_domain {
            return Err(format!("{name} domain {domain} != spec {expected_domain}"));
        }
        let expected: Root = parse(signing, "signing_root");
        let actual = compute_signing_root(&value, domain);
        if actual != expected {
            return Err(format!("{name} signing root {actual} != spec {expected}"));
        }
    }
    Ok(())
}

/// Checks one Lodestar case: from Lodestar's SSZ, Phalanx computes
/// Lodestar's root and writes Lodestar's beacon-API JSON, which reads back
/// to the same value.
fn check_lodestar<T>(case: &Value) -> Result<(), String>
where
    T: DeserializeOwned + serde::Serialize + TreeHash + ssz::Decode + PartialEq + Debug,
{
    let bytes = hex::decode(case["ssz"].as_str().ok_or("ssz")?.trim_start_matches("0x"))
        .map_err(|e| format!("ssz hex: {e}"))?;
    let value = T::from_ssz_bytes(&bytes).map_err(|e| format!("SSZ decode: {e:?}"))?;
    let root: Root = parse(case, "root");
    if value.tree_hash_root() != root {
        return Err(format!(
            "root {} != Lodestar {root}",
            value.tree_hash_root()
        ));
    }
    let ours = serde_json::to_value(&value).map_err(|e| format!("encode: {e}"))?;
    if ours != case["json"] {
        return Err(format!(
            "JSON differs from Lodestar's:\n ours     {ours}\n Lodestar {}",
            case["json"]
        ));
    }
    let theirs: T =
        serde_json::from_value(case["json"].clone()).map_err(|e| format!("decode: {e}"))?;
    if theirs != value {
        return Err("Lodestar's JSON reads back to a different value".into());
    }
    Ok(())
}

/// The first JSON number in `value`, if any.
fn first_number(value: &Value) -> Option<&serde_json::Number> {
    match value {
        Value::Number(number) => Some(number),
        Value::Array(items) => items.iter().find_map(first_number),
        Value::Object(fields) => fields.values().find_map(first_number),
        _ => None,
    }
}

/// A block of any fork, through the fork-aware enum as the node meets it:
/// the fork's own container's checks, then the enum's decoding by fork
/// name (SSZ and JSON) and, from Bellatrix on, the blinded form's root.
fn check_block<E: EthSpec>(case: &Value, fork: &str) -> Result<(), String> {
    match fork {
        "phase0" => check::<BeaconBlockPhase0<E>>(case),
        "altair" => check::<BeaconBlockAltair<E>>(case),
        "bellatrix" => check::<BeaconBlockBellatrix<E>>(case),
        "capella" => check::<BeaconBlockCapella<E>>(case),
        "deneb" => check::<BeaconBlockDeneb<E>>(case),
        _ => check::<BeaconBlockElectra<E>>(case),
    }?;
    let fork: ForkName = fork.parse().map_err(|e| format!("{e}"))?;
    let root: Root = parse(case, "root");
    let bytes = hex::decode(case["ssz"].as_str().ok_or("ssz")?.trim_start_matches("0x"))
        .map_err(|e| format!("ssz hex: {e}"))?;
    let block = BeaconBlock::<E>::from_ssz_bytes(&bytes, fork).map_err(|e| e.to_string())?;
    if block.fork_name() != fork || block.tree_hash_root() != root {
        return Err(format!("the {fork} enum decodes to another block"));
    }
    let json = serde_json::to_value(&block).map_err(|e| e.to_string())?;
    if BeaconBlock::<E>::from_json_value(json, fork).as_ref() != Ok(&block) {
        return Err("the enum's JSON round trip changed the block".into());
    }
    match block.to_blinded() {
        Some(blinded) if blinded.tree_hash_root() != root => {
            Err(format!("the blinded {fork} block has another root"))
        }
        None if fork >= ForkName::Bellatrix => Err(format!("no blinded {fork} block")),
        _ => Ok(()),
    }
}

fn check_case<E: EthSpec>(case: &Value) -> Result<(), String> {
    let fork = case["fork"].as_str().ok_or("fork")?;
    let container = case["container"].as_str().ok_or("container")?;
    let electra = matches!(fork, "electra" | "fulu");
    match (container, fork) {
        ("Checkpoint", _) => check::<Checkpoint>(case),
        ("AttestationData", _) => check::<AttestationData>(case),
        ("Attestation", _) if electra => check::<AttestationElectra<E>>(case),
        ("Attestation", _) => check::<AttestationBase<E>>(case),
        ("IndexedAttestation", _) if electra => check::<IndexedAttestationElectra<E>>(case),
        ("IndexedAttestation", _) => check::<IndexedAttestationBase<E>>(case),
        ("AttesterSlashing", _) if electra => check::<AttesterSlashingElectra<E>>(case),
        ("AttesterSlashing", _) => check::<AttesterSlashingBase<E>>(case),
        ("AggregateAndProof", _) if electra => check::<AggregateAndProofElectra<E>>(case),
        ("AggregateAndProof", _) => check::<AggregateAndProofBase<E>>(case),
        ("SignedAggregateAndProof", _) if electra => {
            check::<SignedAggregateAndProofElectra<E>>(case)
        }
        ("SignedAggregateAndProof", _) => check::<SignedAggregateAndProofBase<E>>(case),
        ("SingleAttestation", _) => check::<SingleAttestation>(case),
        ("BeaconBlockHeader", _) => check::<BeaconBlockHeader>(case),
        ("SignedBeaconBlockHeader", _) => check::<SignedBeaconBlockHeader>(case),
        ("ProposerSlashing", _) => check::<ProposerSlashing>(case),
        ("SyncCommitteeMessage", _) => check::<SyncCommitteeMessage>(case),
        ("SyncCommitteeContribution", _) => check::<SyncCommitteeContribution<E>>(case),
        ("ContributionAndProof", _) => check::<ContributionAndProof<E>>(case),
        ("SignedContributionAndProof", _) => check::<SignedContributionAndProof<E>>(case),
        ("SyncAggregatorSelectionData", _) => check::<SyncAggregatorSelectionData>(case),
        ("SyncAggregate", _) => check::<SyncAggregate<E>>(case),
        ("VoluntaryExit", _) => check::<VoluntaryExit>(case),
        ("SignedVoluntaryExit", _) => check::<SignedVoluntaryExit>(case),
        ("DepositMessage", _) => check::<DepositMessage>(case),
        ("DepositData", _) => check::<DepositData>(case),
        ("Deposit", _) => check::<Deposit>(case),
        ("Eth1Data", _) => check::<Eth1Data>(case),
        ("Withdrawal", _) => check::<Withdrawal>(case),
        ("BLSToExecutionChange", _) => check::<BlsToExecutionChange>(case),
        ("SignedBLSToExecutionChange", _) => check::<SignedBlsToExecutionChange>(case),
        ("ForkData", _) => check::<ForkData>(case),
        ("SigningData", _) => check::<SigningData>(case),
        ("DepositRequest", _) => check::<DepositRequest>(case),
        ("WithdrawalRequest", _) => check::<WithdrawalRequest>(case),
        ("ConsolidationRequest", _) => check::<ConsolidationRequest>(case),
        ("ExecutionRequests", _) => check::<ExecutionRequests<E>>(case),
        ("ExecutionPayload", "bellatrix") => check::<ExecutionPayloadBellatrix>(case),
        ("ExecutionPayload", "capella") => check::<ExecutionPayloadCapella<E>>(case),
        ("ExecutionPayload", _) => check::<ExecutionPayloadDeneb<E>>(case),
        ("ExecutionPayloadHeader", "bellatrix") => check::<ExecutionPayloadHeaderBellatrix>(case),
        ("ExecutionPayloadHeader", "capella") => check::<ExecutionPayloadHeaderCapella>(case),
        ("ExecutionPayloadHeader", _) => check::<ExecutionPayloadHeaderDeneb>(case),
        ("BeaconBlockBody", "phase0") => check::<BeaconBlockBodyPhase0<E>>(case),
        ("BeaconBlockBody", "altair") => check::<BeaconBlockBodyAltair<E>>(case),
        ("BeaconBlockBody", "bellatrix") => check::<BeaconBlockBodyBellatrix<E>>(case),
        ("BeaconBlockBody", "capella") => check::<BeaconBlockBodyCapella<E>>(case),
        ("BeaconBlockBody", "deneb") => check::<BeaconBlockBodyDeneb<E>>(case),
        ("BeaconBlockBody", _) => check::<BeaconBlockBodyElectra<E>>(case),
        ("BeaconBlock", _) => check_block::<E>(case, fork),
        (other, _) => Err(format!("no Phalanx type for {other}")),
    }
}

#[test]
fn roots_and_signing_roots_match_the_executable_spec() {
    let Some(path) = std::env::var_os("PHALANX_SPEC_REFERENCE") else {
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !in_ci,
            "PHALANX_SPEC_REFERENCE is not set under CI: .ci/run must generate the reference"
        );
        #[allow(
            clippy::print_stderr,
            reason = "saying the check was skipped is the point"
        )]
        {
            eprintln!(
                "PHALANX_SPEC_REFERENCE not set: skipping the executable-spec comparison \
                 (see .ci/run for how to generate it)"
            );
        }
        return;
    };
    let text = std::fs::read_to_string(&path).expect("reading the spec reference");
    let reference: Value = serde_json::from_str(&text).expect("spec reference JSON");
    let cases = reference["cases"].as_array().expect("cases");
    assert!(cases.len() > 500, "suspiciously few cases: {}", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let result = match case["preset"].as_str() {
            Some("mainnet") => check_case::<MainnetEthSpec>(case),
            Some("minimal") => check_case::<MinimalEthSpec>(case),
            other => Err(format!("unknown preset {other:?}")),
        };
        if let Err(error) = result {
            failures.push(format!(
                "{} {} {}: {error}",
                case["preset"], case["fork"], case["container"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from the spec:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn beacon_api_json_matches_lodestar() {
    let Some(dir) = std::env::var_os("PHALANX_LODESTAR_REFERENCE") else {
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !in_ci,
            "PHALANX_LODESTAR_REFERENCE is not set under CI: .ci/run must generate it"
        );
        #[allow(
            clippy::print_stderr,
            reason = "saying the check was skipped is the point"
        )]
        {
            eprintln!(
                "PHALANX_LODESTAR_REFERENCE not set: skipping the Lodestar JSON comparison \
                 (see .ci/run for how to generate it)"
            );
        }
        return;
    };
    let mut failures = Vec::new();
    let mut checked = 0;
    for preset in ["mainnet", "minimal"] {
        let path = std::path::Path::new(&dir).join(format!("{preset}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let reference: Value = serde_json::from_str(&text).expect("Lodestar reference JSON");
        let cases = reference["cases"].as_array().expect("cases");
        assert!(cases.len() > 80, "{preset}: only {} cases", cases.len());
        for case in cases {
            let result = match preset {
                "mainnet" => check_case::<MainnetEthSpec>(case),
                _ => check_case::<MinimalEthSpec>(case),
            };
            checked += 1;
            if let Err(error) = result {
                failures.push(format!("{preset} {}: {error}", case["container"]));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} cases differ from Lodestar:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
