//! Algebraic laws of the threshold scheme, over random cluster shapes
//! (t ≤ n ≤ 16) and random choices of signers.

use phalanx_crypto::batch::find_invalid;
use phalanx_crypto::threshold::{combine, recover_public_key, recover_secret_key, split};
use phalanx_crypto::{Error, PartialSignature, PublicShare, SecretKey, SignatureSet};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// (n, t, seed) with 1 ≤ t ≤ n ≤ 16.
fn cluster_shape() -> impl Strategy<Value = (usize, usize, u64)> {
    (1usize..=16).prop_flat_map(|n| (Just(n), 1..=n, any::<u64>()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_t_partials_give_the_unsplit_signature((n, t, seed) in cluster_shape()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let secret = SecretKey::random(&mut rng);
        let split = split(&secret, t, n, &mut rng).expect("valid shape");
        let message = seed.to_be_bytes();
        let expected = secret.sign(&message);

        let mut signers: Vec<usize> = (0..n).collect();
        signers.shuffle(&mut rng);
        let partials: Vec<PartialSignature> = signers[..t]
            .iter()
            .map(|&i| split.secret_shares[i].sign(&message))
            .collect();
        let combined = combine(&partials, t).expect("t partials");
        prop_assert_eq!(combined, expected);
        prop_assert!(combined.verify(&split.group_public_key, &message));

        // A second, independently chosen signer set agrees.
        signers.shuffle(&mut rng);
        let others: Vec<PartialSignature> = signers[..t]
            .iter()
            .map(|&i| split.secret_shares[i].sign(&message))
            .collect();
        prop_assert_eq!(combine(&others, t).expect("t partials"), expected);

        // The group key and secret come back from any t shares too.
        let shares: Vec<_> = signers[..t].iter().map(|&i| split.secret_shares[i].clone()).collect();
        let publics: Vec<PublicShare> = shares.iter().map(|s| s.public_share()).collect();
        prop_assert_eq!(recover_public_key(&publics, t).expect("t shares"), secret.public_key());
        prop_assert_eq!(
            *recover_secret_key(&shares, t).expect("t shares").to_bytes(),
            *secret.to_bytes()
        );
    }

    #[test]
    fn t_minus_one_partials_do_not((n, t, seed) in cluster_shape().prop_filter("t >= 2", |s| s.1 >= 2)) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let secret = SecretKey::random(&mut rng);
        let split = split(&secret, t, n, &mut rng).expect("valid shape");
        let message = b"attestation data root";
        let mut signers: Vec<usize> = (0..n).collect();
        signers.shuffle(&mut rng);
        let partials: Vec<PartialSignature> = signers[..t - 1]
            .iter()
            .map(|&i| split.secret_shares[i].sign(message))
            .collect();

        prop_assert_eq!(
            combine(&partials, t),
            Err(Error::NotEnoughShares { needed: t, got: t - 1 })
        );
        // Interpolating as if the threshold were lower gives a signature
        // that the group key does not accept.
        let forged = combine(&partials, t - 1).expect("t-1 partials for threshold t-1");
        prop_assert!(!forged.verify(&split.group_public_key, message));
        prop_assert_ne!(forged, secret.sign(message));
    }

    #[test]
    fn bad_partials_are_rejected_and_named_in_a_batch(
        (n, t, seed) in cluster_shape().prop_filter("n >= 2", |s| s.0 >= 2),
        corrupt_mask in any::<u16>(),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let secret = SecretKey::random(&mut rng);
        let split = split(&secret, t, n, &mut rng).expect("valid shape");
        let publics = split.public_shares();
        let message = b"block signing root";

        // Operators in the mask misbehave: odd ones sign another message,
        // even ones sign with the next operator's share under their own index
        // (with t = 1 every share is the secret itself, so only the first
        // kind of fault exists).
        let mut expected_bad = Vec::new();
        let partials: Vec<PartialSignature> = (0..n)
            .map(|i| {
                if corrupt_mask & (1 << i) == 0 {
                    return split.secret_shares[i].sign(message);
                }
                expected_bad.push(i);
                if i % 2 == 1 || t == 1 {
                    split.secret_shares[i].sign(b"a different root")
                } else {
                    let wrong = split.secret_shares[(i + 1) % n].sign(message);
                    PartialSignature::new(publics[i].index, wrong.signature)
                }
            })
            .collect();

        for (i, partial) in partials.iter().enumerate() {
            prop_assert_eq!(publics[i].verify(partial, message), !expected_bad.contains(&i));
        }
        let sets: Vec<SignatureSet<'_>> = partials
            .iter()
            .zip(&publics)
            .map(|(p, share)| SignatureSet::new(message, &share.key, &p.signature))
            .collect();
        prop_assert_eq!(find_invalid(&sets, &mut rng), expected_bad);
    }
}
