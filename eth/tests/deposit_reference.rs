//! Deposit data against the staking deposit tool (PyPI `ethstaker-deposit`):
//! `eth/tests/deposit_reference/generate.py` lets the tool build, sign and
//! validate deposits on mainnet, hoodi and sepolia with 0x01 and 0x02
//! credentials and several amounts; `.ci/run` points
//! `PHALANX_DEPOSIT_REFERENCE` at its output. Phalanx must accept each entry
//! and, from the same key, write the same entry byte for byte.

use phalanx_crypto::SecretKey;
use phalanx_eth::config::NetworkConfig;
use phalanx_eth::deposit::{LaunchpadDeposit, WithdrawalCredentials};
use phalanx_eth::validator::DepositMessage;
use phalanx_eth::{ExecutionAddress, Gwei};
use serde_json::Value;

fn reference() -> Option<Value> {
    let Some(path) = std::env::var_os("PHALANX_DEPOSIT_REFERENCE") else {
        let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !in_ci,
            "PHALANX_DEPOSIT_REFERENCE is not set under CI: .ci/run must generate it"
        );
        #[allow(
            clippy::print_stderr,
            reason = "saying the check was skipped is the point"
        )]
        {
            eprintln!(
                "PHALANX_DEPOSIT_REFERENCE not set: skipping the ethstaker-deposit comparison \
                 (see .ci/run for how to generate it)"
            );
        }
        return None;
    };
    let text = std::fs::read_to_string(&path).expect("reading the deposit reference");
    Some(serde_json::from_str(&text).expect("deposit reference JSON"))
}

#[test]
fn deposits_match_the_staking_deposit_tool() {
    let Some(reference) = reference() else { return };
    let cases = reference["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 15, "three networks, five deposits each");
    for case in cases {
        let network = case["network"].as_str().expect("network");
        let theirs: LaunchpadDeposit =
            serde_json::from_value(case["deposit"].clone()).expect("tool's entry parses");
        theirs
            .verify()
            .unwrap_or_else(|e| panic!("{network}: the tool's deposit is refused: {e}"));

        let config = NetworkConfig::built_in(network).expect("built-in network");
        let secret = SecretKey::from_bytes(
            &hex::decode(case["secret_key"].as_str().expect("key")).expect("hex"),
        )
        .expect("secret key");
        let address: ExecutionAddress = case["withdrawal_address"]
            .as_str()
            .expect("address")
            .parse()
            .expect("address parses");
        let credentials = if case["compounding"].as_bool().expect("compounding") {
            WithdrawalCredentials::Compounding(address)
        } else {
            WithdrawalCredentials::Execution(address)
        };
        let message = DepositMessage::new(&secret.public_key(), credentials, Gwei(theirs.amount))
            .expect("message");
        let signature = secret.sign(message.signing_root(config.genesis_fork_version).as_slice());
        let ours = LaunchpadDeposit::new(
            &message,
            &signature,
            config.genesis_fork_version,
            &config.name,
        )
        .expect("our deposit");
        assert_eq!(
            LaunchpadDeposit {
                deposit_cli_version: theirs.deposit_cli_version.clone(),
                ..ours
            },
            theirs,
            "{network}: our entry differs from the tool's"
        );

        let mut tampered = theirs.clone();
        tampered.amount += 1_000_000_000;
        assert!(
            tampered.verify().is_err(),
            "{network}: a changed amount must not verify"
        );
    }
}
