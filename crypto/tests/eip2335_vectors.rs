//! The EIP-2335 test keystores (scrypt and PBKDF2).

use phalanx_crypto::keystore::normalize_password;
use phalanx_crypto::{Keystore, KeystoreError};
use phalanx_test_support::{hex_bytes, json_cases, vectors_dir};

#[test]
fn eip2335_vectors_decrypt() {
    let Some(dir) = vectors_dir("eip2335") else {
        return;
    };
    let cases = json_cases(&dir);
    assert_eq!(cases.len(), 2, "expected the scrypt and pbkdf2 vectors");
    for (name, case) in cases {
        let password = case["password"].as_str().expect("password");
        assert_eq!(
            normalize_password(password).as_slice(),
            hex_bytes(&case["encoded_password"]).as_slice(),
            "{name}: password normalisation"
        );
        let keystore =
            Keystore::from_json(&case["keystore"].to_string()).expect("vector keystore parses");
        let secret = keystore.decrypt(password).expect("vector decrypts");
        assert_eq!(
            secret.to_bytes().as_slice(),
            hex_bytes(&case["secret"]).as_slice(),
            "{name}: secret"
        );
        assert_eq!(keystore.public_key(), Some(&secret.public_key()), "{name}");
        assert_eq!(
            keystore.path(),
            case["keystore"]["path"].as_str().expect("path")
        );

        // The vector's password with one character changed must be refused.
        let wrong = format!("{password}x");
        assert!(
            matches!(keystore.decrypt(&wrong), Err(KeystoreError::WrongPassword)),
            "{name}: wrong password accepted"
        );

        // Writing the keystore back out and reading it again changes nothing.
        let reparsed = Keystore::from_json(&keystore.to_json()).expect("own output parses");
        assert_eq!(reparsed, keystore, "{name}: JSON round trip");
    }
}
