//! Partial signatures awaiting their threshold: this operator's (from its
//! validator client) and its peers' (from parsigex), grouped per duty and
//! validator by signing root — for sync-committee messages operators may
//! sign different head roots, and only partials over the same root combine.
//! Callers verify each partial against its sender's public share before
//! inserting it; the store releases a set exactly once, when it reaches the
//! threshold.
//!
//! What one share may have stored is bounded by the protocol, so a
//! byzantine operator cannot grow the store with roots of its choice: per
//! duty and validator at most [`roots_per_duty`] roots, and per validator
//! one pending exit and one pending builder registration (a newer one
//! replaces the older, whatever its duty).

use std::collections::BTreeMap;

use phalanx_crypto::threshold::ShareIndex;
use phalanx_eth::selection::SYNC_COMMITTEE_SUBNET_COUNT;
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
    /// The share already signed as many roots for the duty and validator
    /// as the duty has.
    #[error("{duty}: share {index} already signed {limit} root(s) for this validator")]
    TooManyRoots {
        /// The duty.
        duty: Duty,
        /// The share index.
        index: u64,
        /// The roots the duty has.
        limit: usize,
    },
}

/// The most roots one share signs for one duty and validator: one object
/// per duty and validator is signed, except sync-committee selection
/// proofs and contributions, one per subcommittee the validator is in (at
/// most `SYNC_COMMITTEE_SUBNET_COUNT`). Exits and builder registrations
/// are bounded per validator instead (see [`replaces_older`]).
pub fn roots_per_duty(kind: DutyType) -> usize {
    match kind {
        DutyType::PrepareSyncContribution | DutyType::SyncContribution => {
            SYNC_COMMITTEE_SUBNET_COUNT as usize
        }
        _ => 1,
    }
}

/// Whether a share's partial of `kind` replaces its previous one of the
/// same validator, whatever the duty: exits and builder registrations are
/// not bound to a slot, and are kept UNBOUND_EPOCHS, so a share has one
/// pending of each per validator, the last it sent (a new fee recipient
/// supersedes the previous registration; an exit is signed once).
pub fn replaces_older(kind: DutyType) -> bool {
    matches!(kind, DutyType::Exit | DutyType::BuilderRegistration)
}

type Key = (Duty, PublicKeyBytes);

/// Stored partials, of signatures of type `G`.
#[derive(Debug)]
pub struct ParSigDb<G> {
    threshold: usize,
    partials: BTreeMap<Key, BTreeMap<Root, BTreeMap<u64, Partial<G>>>>,
    released: BTreeMap<(Key, Option<Root>), Root>,
    /// Each share's pending exit and registration per validator: the duty
    /// and root it is stored under.
    pending: BTreeMap<(DutyType, PublicKeyBytes, u64), (Duty, Root)>,
}

impl<G: Copy + PartialEq> ParSigDb<G> {
    /// A store releasing sets of `threshold` partials.
    pub fn new(threshold: usize) -> ParSigDb<G> {
        ParSigDb {
            threshold,
            partials: BTreeMap::new(),
            released: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Stores a verified partial; returns the set to combine the first time
    /// `threshold` partials over one root are present. A root beyond the
    /// duty's [`roots_per_duty`] for the partial's share is refused; an
    /// exit or registration replaces the share's previous one of the
    /// validator.
    pub fn insert(
        &mut self,
        duty: Duty,
        validator: PublicKeyBytes,
        signing_root: Root,
        partial: Partial<G>,
    ) -> Result<Option<Vec<Partial<G>>>, ParSigError> {
        let key = (duty, validator);
        let index: ShareIndex = partial.index;
        let index = index.get();
        let roots = self.partials.get(&key);
        match roots
            .and_then(|roots| roots.get(&signing_root))
            .and_then(|by_index| by_index.get(&index))
        {
            Some(existing) if *existing == partial => return Ok(None),
            Some(_) => return Err(ParSigError::Equivocation { duty, index }),
            None => {}
        }
        if replaces_older(duty.kind) {
            let previous = self
                .pending
                .insert((duty.kind, validator, index), (duty, signing_root));
            if let Some((duty, root)) = previous {
                self.remove(duty, validator, root, index);
            }
        } else {
            let limit = roots_per_duty(duty.kind);
            let held = roots.map_or(0, |roots| {
                roots
                    .values()
                    .filter(|by_index| by_index.contains_key(&index))
                    .count()
            });
            if held >= limit {
                return Err(ParSigError::TooManyRoots { duty, index, limit });
            }
        }
        let by_index = self
            .partials
            .entry(key)
            .or_default()
            .entry(signing_root)
            .or_default();
        by_index.insert(index, partial);
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

    /// The roots share `index` has partials over for a duty and validator.
    pub fn roots_of(&self, duty: &Duty, validator: &PublicKeyBytes, index: u64) -> Vec<Root> {
        self.partials
            .get(&(*duty, *validator))
            .map(|roots| {
                roots
                    .iter()
                    .filter(|(_, by_index)| by_index.contains_key(&index))
                    .map(|(root, _)| *root)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets one share's partial, and what is left empty.
    fn remove(&mut self, duty: Duty, validator: PublicKeyBytes, root: Root, index: u64) {
        let key = (duty, validator);
        let Some(roots) = self.partials.get_mut(&key) else {
            return;
        };
        if let Some(by_index) = roots.get_mut(&root) {
            by_index.remove(&index);
            if by_index.is_empty() {
                roots.remove(&root);
            }
        }
        if roots.is_empty() {
            self.partials.remove(&key);
        }
    }

    /// The partials stored, over every duty, validator and root.
    pub fn len(&self) -> usize {
        self.partials
            .values()
            .flat_map(BTreeMap::values)
            .map(BTreeMap::len)
            .sum()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.partials.is_empty()
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
        self.pending.retain(|_, (duty, _)| kept(duty));
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
        let key_split = split(&secret, 3, 5, &mut rng).expect("split");
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
        assert_eq!(db.len(), 4);
        // A third signature over A reaches the threshold, exactly once.
        let third = Partial::from(shares[4].sign(root_a.as_slice()));
        let set = db
            .insert(duty, validator, root_a, third)
            .expect("stored")
            .expect("released");
        let signature = Bls::combine(&set, 3).expect("combines");
        assert!(signature.verify(&secret.public_key(), root_a.as_slice()));
        // An operator that signed head B cannot sign A as well.
        let second_root = Partial::from(shares[3].sign(root_a.as_slice()));
        assert_eq!(
            db.insert(duty, validator, root_a, second_root),
            Err(ParSigError::TooManyRoots {
                duty,
                index: 4,
                limit: 1
            })
        );
        // The same partial again is ignored; a different one from the same share is refused.
        assert_eq!(
            db.insert(duty, validator, root_a, third)
                .expect("duplicate"),
            None
        );
        let forged = shares[4].sign(root_b.as_slice());
        assert!(matches!(
            db.insert(
                duty,
                validator,
                root_a,
                Partial {
                    index: third.index,
                    signature: forged.signature
                }
            ),
            Err(ParSigError::Equivocation { .. })
        ));
        assert_eq!(db.len(), 5);
        db.expire_before(Slot(4), Slot(4));
        assert!(db.get(&duty, &validator, &root_a).is_empty());
        assert!(db.is_empty());
    }

    /// `k` partials of one share of a validator, each over its own root,
    /// signed by an arbitrary key (the store trusts its callers' checks).
    fn distinct_roots(k: u8) -> Vec<(Root, Partial<phalanx_crypto::Signature>)> {
        let mut rng = rand::rngs::OsRng;
        let secret = SecretKey::random(&mut rng);
        let share = &split(&secret, 3, 4, &mut rng).expect("split").secret_shares[1];
        (0..k)
            .map(|i| {
                let root = Root::repeat_byte(i);
                (root, Partial::from(share.sign(root.as_slice())))
            })
            .collect()
    }

    fn stored(db: &ParSigDb<phalanx_crypto::Signature>, duty: Duty, roots: &[Root]) -> usize {
        let validator = PublicKeyBytes::repeat_byte(9);
        roots
            .iter()
            .map(|root| db.get(&duty, &validator, root).len())
            .sum()
    }

    #[test]
    fn a_share_keeps_the_roots_its_duty_has() {
        let validator = PublicKeyBytes::repeat_byte(9);
        let signed = distinct_roots(40);
        let roots: Vec<Root> = signed.iter().map(|(root, _)| *root).collect();
        for (kind, bound) in [
            (DutyType::Attester, 1),
            (DutyType::Aggregator, 1),
            (DutyType::Proposer, 1),
            (DutyType::SyncMessage, 1),
            (DutyType::PrepareSyncContribution, 4),
            (DutyType::SyncContribution, 4),
        ] {
            let duty = Duty::new(Slot(3), kind);
            let mut db = ParSigDb::new(3);
            let refused = signed
                .iter()
                .filter(|(root, partial)| db.insert(duty, validator, *root, *partial).is_err())
                .count();
            assert_eq!(stored(&db, duty, &roots), bound, "{kind:?}");
            assert_eq!(refused, signed.len() - bound, "{kind:?}");
        }
    }

    #[test]
    fn a_share_keeps_one_exit_and_one_registration_per_validator() {
        let validator = PublicKeyBytes::repeat_byte(9);
        let signed = distinct_roots(40);
        let roots: Vec<Root> = signed.iter().map(|(root, _)| *root).collect();
        for kind in [DutyType::Exit, DutyType::BuilderRegistration] {
            let mut db = ParSigDb::new(3);
            // A root for each of 40 epochs, then 40 roots for one epoch.
            let duties: Vec<Duty> = (0..40u64).map(|e| Duty::new(Slot(e * 32), kind)).collect();
            for (duty, (root, partial)) in duties.iter().zip(&signed) {
                assert_eq!(db.insert(*duty, validator, *root, *partial), Ok(None));
            }
            let held: usize = duties.iter().map(|d| stored(&db, *d, &roots)).sum();
            assert_eq!(held, 1, "{kind:?}");
            // The newest stands.
            assert_eq!(db.get(&duties[39], &validator, &roots[39]).len(), 1);
            for (root, partial) in &signed {
                db.insert(duties[0], validator, *root, *partial)
                    .expect("replaces");
            }
            let held: usize = duties.iter().map(|d| stored(&db, *d, &roots)).sum();
            assert_eq!(held, 1, "{kind:?}");
            assert_eq!(db.len(), 1, "{kind:?}");
        }
    }
}
