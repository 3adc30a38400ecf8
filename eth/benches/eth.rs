//! Criterion benchmarks of the eth crate: hash_tree_root of a full Electra
//! block and JSON decoding of a large produceBlockV3 response.
//!
//! `cargo bench -p phalanx-eth --bench eth`; results go to BENCHMARKS.md.

#![allow(missing_docs, reason = "criterion_group! generates undocumented items")]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use phalanx_eth::block::BeaconBlock;
use phalanx_eth::block_contents::{ProducedBlock, BYTES_PER_BLOB};
use phalanx_eth::{ForkName, MainnetEthSpec};
use serde_json::{json, Value};

type E = MainnetEthSpec;

fn hex(byte: u8, len: usize) -> String {
    format!("0x{}", hex::encode(vec![byte; len]))
}

/// A mainnet Electra block as busy as blocks get: 8 aggregate attestations
/// over 64 committees, 16 withdrawals, a full sync aggregate, `transactions`
/// transactions of 1,000 bytes, 6 blob commitments.
fn busy_block(transactions: u32) -> Value {
    let checkpoint = |epoch: u64| json!({"epoch": epoch.to_string(), "root": hex(epoch as u8, 32)});
    let data = json!({
        "slot": "1000", "index": "0", "beacon_block_root": hex(1, 32),
        "source": checkpoint(30), "target": checkpoint(31),
    });
    // 64 committees of 400: 25,600 bits plus the length bit.
    let mut bits = vec![0xffu8; 3200];
    bits.push(0x01);
    let attestation = json!({
        "aggregation_bits": format!("0x{}", hex::encode(&bits)),
        "data": data,
        "signature": hex(0xaa, 96),
        "committee_bits": format!("0x{}", "ff".repeat(8)),
    });
    let withdrawal = |i: u64| {
        json!({
            "index": i.to_string(), "validator_index": (i * 7).to_string(),
            "address": hex(3, 20), "amount": "18000000",
        })
    };
    let transactions: Vec<String> = (0..transactions).map(|i| hex(i as u8, 1000)).collect();
    json!({
        "slot": "1000", "proposer_index": "12345",
        "parent_root": hex(2, 32), "state_root": hex(3, 32),
        "body": {
            "randao_reveal": hex(0xbb, 96),
            "eth1_data": {"deposit_root": hex(4, 32), "deposit_count": "100", "block_hash": hex(5, 32)},
            "graffiti": hex(6, 32),
            "proposer_slashings": [], "attester_slashings": [],
            "attestations": vec![attestation; 8],
            "deposits": [], "voluntary_exits": [],
            "sync_aggregate": {"sync_committee_bits": hex(0xff, 64), "sync_committee_signature": hex(0xcc, 96)},
            "execution_payload": {
                "parent_hash": hex(7, 32), "fee_recipient": hex(8, 20), "state_root": hex(9, 32),
                "receipts_root": hex(10, 32), "logs_bloom": hex(11, 256), "prev_randao": hex(12, 32),
                "block_number": "21000000", "gas_limit": "36000000", "gas_used": "35000000",
                "timestamp": "1750000000", "extra_data": hex(13, 32),
                "base_fee_per_gas": "1000000000", "block_hash": hex(14, 32),
                "transactions": transactions,
                "withdrawals": (0..16).map(withdrawal).collect::<Vec<_>>(),
                "blob_gas_used": "786432", "excess_blob_gas": "0",
            },
            "bls_to_execution_changes": [],
            "blob_kzg_commitments": vec![hex(0xdd, 48); 6],
            "execution_requests": {"deposits": [], "withdrawals": [], "consolidations": []},
        }
    })
}

fn benches(c: &mut Criterion) {
    // 1,400 transactions of 1 kB: a payload near the gas limit.
    let block =
        BeaconBlock::<E>::from_json_value(busy_block(1400), ForkName::Electra).expect("block");
    let mut group = c.benchmark_group("eth");
    group.bench_function("hash_tree_root_electra_block_full_payload", |b| {
        b.iter(|| black_box(&block).tree_hash_root())
    });

    // 200 transactions and 6 blobs: a 2 MB response.
    let response = json!({
        "version": "electra",
        "execution_payload_blinded": false,
        "execution_payload_value": "12345678901234567",
        "consensus_block_value": "45678901",
        "data": {
            "block": busy_block(200),
            "kzg_proofs": vec![hex(0xee, 48); 6],
            "blobs": vec![hex(0x5a, BYTES_PER_BLOB); 6],
        }
    });
    let body = serde_json::to_vec(&response).expect("json");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function(
        format!(
            "decode_produce_block_v3_json_{:.1}MB",
            body.len() as f64 / 1e6
        ),
        |b| {
            b.iter(|| {
                ProducedBlock::<E>::from_json(black_box(&body), Some(ForkName::Electra))
                    .expect("decodes")
            })
        },
    );
    group.finish();
}

criterion_group!(eth, benches);
criterion_main!(eth);
