//! Partial signatures awaiting their threshold: this operator's (from its
//! validator client) and its peers' (from parsigex), grouped per duty and
//! validator by signing root — for sync-committee messages operators may
//! sign different head roots, and only partials over the same root combine.
//! Callers verify each partial against its sender's public share before
//! inserting it; the store releases a set exactly once, when it reaches the
//! threshold.

use std::collections::BTreeMap;

use phalanx_crypto::threshold::ShareIndex;
use phalanx_eth::{PublicKeyBytes, Root, Slot};

use crate::duty::{Duty, DutyType};
use crate::scheme::Partial;

/// A partial signature that contradicts one already stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParSigError {
    /// The same share signed the same root differently (impossible for an
    /// honest BLS signer: deterministic signatures).
    #[error("{duty}: share {index} sent two different signatures over one root")]
    Equivocation {
        /// The duty.
        duty: Duty,
        /// The share index.
        index: u64,
    },
}

type Key = (Duty, PublicKeyBytes);

/// Stored partials, of signatures of type `G`.
#[derive(Debug)]
pub struct ParSigDb<G> {
    threshold: usize,
    partials: BTreeMap<Key, BTreeMap<Root, BTreeMap<u64, Partial<G>>>>,
    released: BTreeMap<(Key, Option<Root>), Root>,
}

impl<G: Copy + PartialEq> ParSigDb<G> {
    /// A store releasing sets of `threshold` partials.
    pub fn new(threshold: usize) -> ParSigDb<G> {
        ParSigDb {
            threshold,
            partials: BTreeMap::new(),
            released: BTreeMap::new(),
        }
    }

    /// Stores a verified partial; returns the set to combine the first time
    /// `threshold` partials over one root are present.
    pub fn insert(
        &mut self,
        duty: Duty,
        validator: PublicKeyBytes,
        signing_root: Root,
        partial: Partial<G>,
    ) -> Result<Option<Vec<Partial<G>>>, ParSigError> {
        let key = (duty, validator);
        let by_index = self
            .partials
            .entry(key)
            .or_default()
            .entry(signing_root)
            .or_default();
        let index: ShareIndex = partial.index;
        match by_index.get(&index.get()) {
            Some(existing) if *existing == partial => return Ok(None),
            Some(_) => {
                return Err(ParSigError::Equivocation {
                    duty,
                    index: index.get(),
                })
            }
            None => {
                by_index.insert(index.get(), partial);
            }
        }
        // One object per duty and validator is combined, except sync
        // selection proofs and contributions (a validator in several
        // subcommittees has one per subcommittee, each over its own root)
        // and builder registrations (a newer one may follow).
        let per_root = matches!(
            duty.kind,
            DutyType::PrepareSyncContribution
                | DutyType::SyncContribution
                | DutyType::BuilderRegistration
        );
        let release = (key, per_root.then_some(signing_root));
        if by_index.len() >= self.threshold && !self.released.contains_key(&release) {
            self.released.insert(release, signing_root);
            return Ok(Some(
                by_index.values().take(self.threshold).copied().collect(),
            ));
        }
        Ok(None)
    }

    /// The partials stored for a duty, validator and root.
    pub fn get(&self, duty: &Duty, validator: &PublicKeyBytes, root: &Root) -> Vec<Partial<G>> {
        self.partials
            .get(&(*duty, *validator))
            .and_then(|roots| roots.get(root))
            .map(|by_index| by_index.values().copied().collect())
            .unwrap_or_default()
    }

    /// Forgets duties of slots before `slot`; exits and registrations,
    /// which are not bound to a slot, before `unbound`.
    pub fn expire_before(&mut self, slot: Slot, unbound: Slot) {
        let kept = |duty: &Duty| {
            duty.slot >= slot
                || (matches!(duty.kind, DutyType::Exit | DutyType::BuilderRegistration)
                    && duty.slot >= unbound)
        };
        self.partials.retain(|(duty, _), _| kept(duty));
        self.released.retain(|((duty, _), _), _| kept(duty));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::{Bls, SignatureScheme};
    use phalanx_crypto::threshold::split;
    use phalanx_crypto::SecretKey;

    #[test]
    fn a_set_is_released_once_at_the_threshold_per_root() {
        let mut rng = rand::rngs::OsRng;
        let secret = SecretKey::random(&mut rng);
        let key_split = split(&secret, 3, 4, &mut rng).expect("split");
        let duty = Duty::new(Slot(3), DutyType::SyncMessage);
        let validator = PublicKeyBytes::repeat_byte(9);
        let (root_a, root_b) = (Root::repeat_byte(1), Root::repeat_byte(2));
        let mut db = ParSigDb::new(3);
        let shares = &key_split.secret_shares;
        // Two operators sign head A, two sign head B: nothing combines yet.
        for (share, root) in shares.iter().zip([root_a, root_a, root_b, root_b]) {
            let partial = Partial::from(share.sign(root.as_slice()));
            assert_eq!(
                db.insert(duty, validator, root, partial).expect("stored"),
                None
            );
        }
        // A third signature over A reaches the threshold, exactly once.
        let third = Partial::from(shares[2].sign(root_a.as_slice()));
        let set = db
            .insert(duty, validator, root_a, third)
            .expect("stored")
            .expect("released");
        let signature = Bls::combine(&set, 3).expect("combines");
        assert!(signature.verify(&secret.public_key(), root_a.as_slice()));
        let fourth = Partial::from(shares[3].sign(root_a.as_slice()));
        assert_eq!(
            db.insert(duty, validator, root_a, fourth).expect("stored"),
            None
        );
        // The same partial again is ignored; a different one from the same share is refused.
        assert_eq!(
            db.insert(duty, validator, root_a, third)
                .expect("duplicate"),
            None
        );
        let forged = shares[2].sign(root_b.as_slice());
        assert!(db
            .insert(
                duty,
                validator,
                root_a,
                Partial {
                    index: third.index,
                    signature: forged.signature
                }
            )
            .is_err());
        db.expire_before(Slot(4), Slot(4));
        assert!(db.get(&duty, &validator, &root_a).is_empty());
    }
}
