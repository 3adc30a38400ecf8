//! EIP-2333 hierarchical key derivation (master key from a seed, child keys
//! through Lamport keys) and EIP-2334 paths such as `m/12381/3600/0/0/0`.

use crate::bls::SecretKey;
use crate::error::Error;

/// The purpose field of every EIP-2334 path.
pub const PURPOSE: u32 = 12381;
/// The coin type of Ethereum.
pub const COIN_TYPE: u32 = 3600;

/// EIP-2333 `derive_master_SK`; the seed must be at least 32 bytes.
pub fn derive_master_sk(seed: &[u8]) -> Result<SecretKey, Error> {
    if seed.len() < 32 {
        return Err(Error::SeedTooShort(seed.len()));
    }
    blst::min_pk::SecretKey::derive_master_eip2333(seed)
        .map(SecretKey::from_blst)
        .map_err(|_| Error::SeedTooShort(seed.len()))
}

/// EIP-2333 `derive_child_SK`.
pub fn derive_child_sk(parent: &SecretKey, index: u32) -> SecretKey {
    SecretKey::from_blst(parent.as_blst().derive_child_eip2333(index))
}

/// The key at an EIP-2334 path (`m/12381/3600/...`) below the seed's master key.
pub fn derive_path(seed: &[u8], path: &str) -> Result<SecretKey, Error> {
    let indices = parse_path(path)?;
    let mut key = derive_master_sk(seed)?;
    for index in indices {
        key = derive_child_sk(&key, index);
    }
    Ok(key)
}

/// The signing-key path of validator `index` (EIP-2334).
pub fn validator_signing_path(index: u32) -> String {
    format!("m/{PURPOSE}/{COIN_TYPE}/{index}/0/0")
}

/// The withdrawal-key path of validator `index` (EIP-2334).
pub fn validator_withdrawal_path(index: u32) -> String {
    format!("m/{PURPOSE}/{COIN_TYPE}/{index}/0")
}

fn parse_path(path: &str) -> Result<Vec<u32>, Error> {
    let invalid = |reason| Error::InvalidPath {
        path: path.into(),
        reason,
    };
    let mut parts = path.split('/');
    if parts.next() != Some("m") {
        return Err(invalid("must start with \"m\""));
    }
    let indices = parts
        .map(|part| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid("every level must be a decimal number"));
            }
            part.parse::<u32>()
                .map_err(|_| invalid("levels must be below 2^32"))
        })
        .collect::<Result<Vec<u32>, Error>>()?;
    if indices.first().is_some_and(|&purpose| purpose != PURPOSE) {
        return Err(invalid("the purpose level must be 12381"));
    }
    Ok(indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [7u8; 32];

    #[test]
    fn paths_parse_or_say_why_not() {
        assert_eq!(parse_path("m"), Ok(vec![]));
        assert_eq!(
            parse_path("m/12381/3600/5/0/0"),
            Ok(vec![12381, 3600, 5, 0, 0])
        );
        for bad in [
            "",
            "n/12381",
            "m/12381/",
            "m/12381/x",
            "m/44/60",
            "m/12381/4294967296",
        ] {
            assert!(
                matches!(parse_path(bad), Err(Error::InvalidPath { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn path_derivation_walks_the_children() {
        let master = derive_master_sk(&SEED).expect("seed long enough");
        let by_hand = derive_child_sk(
            &derive_child_sk(
                &derive_child_sk(&derive_child_sk(&derive_child_sk(&master, 12381), 3600), 2),
                0,
            ),
            0,
        );
        let by_path = derive_path(&SEED, &validator_signing_path(2)).expect("valid path");
        assert_eq!(by_path.to_bytes(), by_hand.to_bytes());
        assert_eq!(validator_withdrawal_path(2), "m/12381/3600/2/0");
    }

    #[test]
    fn short_seed_is_refused() {
        assert_eq!(
            derive_master_sk(&[1u8; 31]).map(|_| ()),
            Err(Error::SeedTooShort(31))
        );
    }
}
