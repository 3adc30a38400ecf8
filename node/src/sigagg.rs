//! Combining partial signatures into the group signature: exactly
//! threshold partials (each already verified against its sender's share),
//! combined by Lagrange interpolation, and the result verified against the
//! group key before anything is broadcast. The combinations of one event are
//! verified together, in one batch.

use std::collections::BTreeSet;

use rand::{CryptoRng, RngCore};

use crate::scheme::{Check, Partial, SignatureScheme};

/// Why no group signature came out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregationError {
    /// Fewer partials than the threshold.
    #[error("{got} partial signatures, {needed} needed")]
    TooFew {
        /// Partials given.
        got: usize,
        /// The threshold.
        needed: usize,
    },
    /// The combination failed (duplicate indices, malformed input).
    #[error("combining: {0}")]
    Combine(String),
    /// The combined signature does not verify: a partial was not checked
    /// against its share, or the shares do not belong to this key.
    #[error("the combined signature does not verify under the group key")]
    Invalid,
}

/// One validator's partials to combine: over `message`, under `group_key`.
pub struct Combination<'a, S: SignatureScheme> {
    /// At least the threshold's number of partials.
    pub partials: &'a [Partial<S::Signature>],
    /// The validator's group key.
    pub group_key: &'a S::PublicKey,
    /// The signing root.
    pub message: &'a [u8],
}

/// Combines the partials of many validators: each validator's on its own
/// (by [`SignatureScheme::combine`]), and the combined signatures are
/// verified in one batch (signatures over
/// one signing root share a pairing). A bad one is still named: its result
/// is [`AggregationError::Invalid`], the others' are unaffected.
pub fn aggregate_all<S: SignatureScheme, R: RngCore + CryptoRng>(
    combinations: &[Combination<'_, S>],
    threshold: usize,
    rng: &mut R,
) -> Vec<Result<S::Signature, AggregationError>> {
    let mut results: Vec<Result<S::Signature, AggregationError>> = combinations
        .iter()
        .map(|c| {
            if c.partials.len() < threshold {
                return Err(AggregationError::TooFew {
                    got: c.partials.len(),
                    needed: threshold,
                });
            }
            S::combine(c.partials, threshold).map_err(AggregationError::Combine)
        })
        .collect();
    let combined: Vec<(usize, S::Signature)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().ok().map(|s| (i, *s)))
        .collect();
    if combined.is_empty() {
        return results;
    }
    let checks: Vec<Check<'_, S>> = combined
        .iter()
        .map(|(i, signature)| Check {
            message: combinations[*i].message,
            public_key: combinations[*i].group_key,
            signature,
        })
        .collect();
    let invalid: BTreeSet<usize> = S::find_invalid(&checks, rng).into_iter().collect();
    for (k, (i, _)) in combined.iter().enumerate() {
        if invalid.contains(&k) {
            results[*i] = Err(AggregationError::Invalid);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::Bls;
    use phalanx_crypto::threshold::{split, PartialSignature};
    use phalanx_crypto::{PublicKey, SecretKey, Signature};

    fn partials(signed: &[PartialSignature]) -> Vec<Partial<Signature>> {
        signed.iter().map(|p| Partial::from(*p)).collect()
    }

    /// `aggregate_all` for one validator.
    fn aggregate(
        partials: &[PartialSignature],
        group_key: &PublicKey,
        message: &[u8],
    ) -> Result<Signature, AggregationError> {
        let partials = self::partials(partials);
        let combination = Combination::<Bls> {
            partials: &partials,
            group_key,
            message,
        };
        let mut results = aggregate_all(&[combination], 3, &mut rand::rngs::OsRng);
        results.pop().expect("one result per combination")
    }

    #[test]
    fn threshold_partials_combine_and_fewer_or_wrong_ones_do_not() {
        let mut rng = rand::rngs::OsRng;
        let secret = SecretKey::random(&mut rng);
        let group = secret.public_key();
        let shares = split(&secret, 3, 4, &mut rng).expect("split").secret_shares;
        let message = b"signing root";
        let partials: Vec<_> = shares.iter().map(|s| s.sign(message)).collect();
        let signature = aggregate(&partials[1..], &group, message).expect("combines");
        assert_eq!(signature, secret.sign(message));
        assert_eq!(
            aggregate(&partials[..2], &group, message),
            Err(AggregationError::TooFew { got: 2, needed: 3 })
        );
        // A partial over another message spoils the combination, which is caught.
        let mut mixed = partials[..3].to_vec();
        mixed[0] = shares[0].sign(b"other");
        assert_eq!(
            aggregate(&mixed, &group, message),
            Err(AggregationError::Invalid)
        );
    }

    #[test]
    fn a_batch_names_the_combination_that_does_not_verify() {
        let mut rng = rand::rngs::OsRng;
        let message = b"one root for all";
        let secrets: Vec<SecretKey> = (0..5).map(|_| SecretKey::random(&mut rng)).collect();
        let groups: Vec<PublicKey> = secrets.iter().map(SecretKey::public_key).collect();
        let mut partials: Vec<Vec<Partial<Signature>>> = secrets
            .iter()
            .map(|secret| {
                let shares = split(secret, 3, 4, &mut rng).expect("split").secret_shares;
                shares
                    .iter()
                    .map(|s| Partial::from(s.sign(message)))
                    .collect()
            })
            .collect();
        // Validator 1's first partial is over another message, and
        // validator 3 has too few.
        let shares = split(&secrets[1], 3, 4, &mut rng)
            .expect("split")
            .secret_shares;
        partials[1][0] = Partial::from(shares[0].sign(b"other"));
        partials[3].truncate(2);
        let combinations: Vec<Combination<'_, Bls>> = (0..5)
            .map(|i| Combination {
                partials: &partials[i],
                group_key: &groups[i],
                message,
            })
            .collect();
        let results = aggregate_all(&combinations, 3, &mut rng);
        assert_eq!(results[0], Ok(secrets[0].sign(message)));
        assert_eq!(results[1], Err(AggregationError::Invalid));
        assert_eq!(results[2], Ok(secrets[2].sign(message)));
        assert_eq!(
            results[3],
            Err(AggregationError::TooFew { got: 2, needed: 3 })
        );
        assert_eq!(results[4], Ok(secrets[4].sign(message)));
    }
}
