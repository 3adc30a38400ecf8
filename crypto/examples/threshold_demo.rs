//! A distributed validator's signature in miniature: a key is split among
//! operators, each signs with its share, a bad partial is caught and blamed,
//! and any threshold of honest partials combine into one signature that
//! verifies against the validator's public key.
//!
//! `cargo run --release -p phalanx-crypto --example threshold_demo [-- OPERATORS [THRESHOLD]]`

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a demo prints what it does"
)]

use std::process::ExitCode;

use phalanx_crypto::batch::find_invalid;
use phalanx_crypto::threshold::{combine, recover_public_key, split};
use phalanx_crypto::{PartialSignature, SecretKey, SignatureSet};
use rand::rngs::OsRng;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let operators: usize = match args.first().map(|a| a.parse()) {
        None => 4,
        Some(Ok(n)) if (1..=64).contains(&n) => n,
        Some(_) => {
            eprintln!("OPERATORS must be a number from 1 to 64");
            return ExitCode::FAILURE;
        }
    };
    let quorum = (2 * operators).div_ceil(3);
    let threshold: usize = match args.get(1).map(|a| a.parse()) {
        None => quorum,
        Some(Ok(t)) if (1..=operators).contains(&t) => t,
        Some(_) => {
            eprintln!("THRESHOLD must be a number from 1 to OPERATORS ({operators})");
            return ExitCode::FAILURE;
        }
    };

    let validator_key = SecretKey::random(&mut OsRng);
    let group_key = validator_key.public_key();
    println!("validator public key   {group_key}");

    let split = match split(&validator_key, threshold, operators, &mut OsRng) {
        Ok(split) => split,
        Err(e) => {
            eprintln!("cannot split the key: {e}");
            return ExitCode::FAILURE;
        }
    };
    drop(validator_key);
    println!("split among {operators} operators, any {threshold} can sign; the whole key is now discarded");
    let public_shares = split.public_shares();
    for share in &public_shares {
        println!("  operator {:>2} public share {}", share.index, share.key);
    }
    let recovered = recover_public_key(&public_shares[operators - threshold..], threshold);
    println!(
        "group key recovered from the last {threshold} public shares matches: {}",
        recovered.as_ref() == Ok(&group_key)
    );

    let signing_root = [0x42u8; 32];
    println!(
        "\neach operator signs signing root 0x{}",
        hex::encode(signing_root)
    );
    let mut partials: Vec<PartialSignature> = split
        .secret_shares
        .iter()
        .map(|share| share.sign(&signing_root))
        .collect();
    // Operator 1 misbehaves: it signs something else.
    partials[0] = split.secret_shares[0].sign(b"a conflicting block root");

    let sets: Vec<SignatureSet<'_>> = partials
        .iter()
        .zip(&public_shares)
        .map(|(partial, share)| SignatureSet::new(&signing_root, &share.key, &partial.signature))
        .collect();
    let bad = find_invalid(&sets, &mut OsRng);
    for &i in &bad {
        println!(
            "  partial from operator {} does not verify: dropped",
            partials[i].index
        );
    }
    let good: Vec<PartialSignature> = partials
        .iter()
        .enumerate()
        .filter(|(i, _)| !bad.contains(i))
        .map(|(_, p)| *p)
        .collect();
    if good.len() < threshold {
        println!(
            "only {} valid partials, {threshold} needed: this duty fails",
            good.len()
        );
        return ExitCode::FAILURE;
    }

    let signature = match combine(&good[..threshold], threshold) {
        Ok(signature) => signature,
        Err(e) => {
            eprintln!("cannot combine: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signers: Vec<String> = good[..threshold]
        .iter()
        .map(|p| p.index.to_string())
        .collect();
    println!("\ncombined partials of operators {}", signers.join(", "));
    println!("signature {signature}");
    let valid = signature.verify(&group_key, &signing_root);
    println!("verifies against the validator public key: {valid}");
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
