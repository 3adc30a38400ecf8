//! Bytes from peers, validator clients and files are hostile until decoded:
//! every decoder must answer with a typed error, never a panic.

use phalanx_crypto::threshold::ShareIndex;
use phalanx_crypto::{KdfSetting, Keystore, PartialSignature, PublicKey, SecretKey, Signature};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn low_cost_keystore_json() -> String {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let secret = SecretKey::random(&mut rng);
    Keystore::encrypt(&secret, "pw", "", KdfSetting::InsecureLowCost, &mut rng)
        .expect("encrypt")
        .to_json()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = PublicKey::from_bytes(&bytes);
        let _ = Signature::from_bytes(&bytes);
        let _ = SecretKey::from_bytes(&bytes);
        let index = ShareIndex::new(1).expect("non-zero");
        let _ = PartialSignature::from_bytes(index, &bytes);
    }

    #[test]
    fn flag_bits_on_well_sized_input_never_panic(
        first in any::<u8>(),
        rest in proptest::collection::vec(any::<u8>(), 95),
    ) {
        let mut bytes = vec![first];
        bytes.extend(rest);
        let _ = Signature::from_bytes(&bytes);
        let _ = PublicKey::from_bytes(&bytes[..48]);
    }

    #[test]
    fn random_text_is_not_a_keystore(text in ".{0,300}") {
        prop_assert!(Keystore::from_json(&text).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_keystores_are_refused_or_fail_cleanly(position in any::<prop::sample::Index>(), byte in 0x20u8..0x7f) {
        let mut json = low_cost_keystore_json().into_bytes();
        let at = position.index(json.len());
        json[at] = byte;
        let Ok(text) = String::from_utf8(json) else { return Ok(()); };
        if let Ok(keystore) = Keystore::from_json(&text) {
            // Parsed: decryption either works (the edit hit nothing that
            // matters) or fails with a typed error.
            let _ = keystore.decrypt("pw");
        }
    }
}

#[test]
fn the_low_cost_setting_logs_a_warning() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let secret = SecretKey::random(&mut rng);
        Keystore::encrypt(&secret, "pw", "", KdfSetting::InsecureLowCost, &mut rng)
            .expect("encrypt");
    });
    let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("insecure low-cost KDF"), "{log}");
}
