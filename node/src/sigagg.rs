//! Combining partial signatures into the group signature: exactly
//! threshold partials (each already verified against its sender's share),
//! combined by Lagrange interpolation, and the result verified against the
//! group key before anything is broadcast.

use phalanx_crypto::threshold::{combine, PartialSignature};
use phalanx_crypto::{PublicKey, Signature};

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

/// Combines `threshold` partials over `message` and verifies the result
/// under `group_key`.
pub fn aggregate(
    partials: &[PartialSignature],
    threshold: usize,
    group_key: &PublicKey,
    message: &[u8],
) -> Result<Signature, AggregationError> {
    if partials.len() < threshold {
        return Err(AggregationError::TooFew {
            got: partials.len(),
            needed: threshold,
        });
    }
    let signature =
        combine(partials, threshold).map_err(|e| AggregationError::Combine(e.to_string()))?;
    if !signature.verify(group_key, message) {
        return Err(AggregationError::Invalid);
    }
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use phalanx_crypto::threshold::split;
    use phalanx_crypto::SecretKey;

    #[test]
    fn threshold_partials_combine_and_fewer_or_wrong_ones_do_not() {
        let mut rng = rand::rngs::OsRng;
        let secret = SecretKey::random(&mut rng);
        let group = secret.public_key();
        let shares = split(&secret, 3, 4, &mut rng).expect("split").secret_shares;
        let message = b"signing root";
        let partials: Vec<_> = shares.iter().map(|s| s.sign(message)).collect();
        let signature = aggregate(&partials[1..], 3, &group, message).expect("combines");
        assert_eq!(signature, secret.sign(message));
        assert_eq!(
            aggregate(&partials[..2], 3, &group, message),
            Err(AggregationError::TooFew { got: 2, needed: 3 })
        );
        // A partial over another message spoils the combination, which is caught.
        let mut mixed = partials[..3].to_vec();
        mixed[0] = shares[0].sign(b"other");
        assert_eq!(
            aggregate(&mixed, 3, &group, message),
            Err(AggregationError::Invalid)
        );
    }
}
