//! Phase 6 and the end: every operator's partial signatures of the
//! deposits and builder registrations are combined and verified (naming
//! who sent a bad one), the lock is signed with the node key and every
//! share, and the assembled lock is verified.

use phalanx_crypto::threshold::{combine, PartialSignature};
use phalanx_crypto::Signature;
use phalanx_eth::deposit::LaunchpadDeposit;
use phalanx_eth::signing::{application_builder_domain, compute_signing_root};
use phalanx_eth::validator::{DepositMessage, SignedValidatorRegistration, ValidatorRegistration};
use phalanx_eth::PublicKeyBytes;

use super::{Action, Body, Ceremony, Outcome};
use crate::lock::{lock_hash, ClusterLock, DistributedValidator};

impl Ceremony {
    pub(super) fn registration(
        &self,
        group: &phalanx_crypto::PublicKey,
        fee_recipient: phalanx_eth::ExecutionAddress,
    ) -> ValidatorRegistration {
        ValidatorRegistration {
            fee_recipient,
            gas_limit: self.definition.builder.gas_limit,
            timestamp: self.definition.builder.timestamp,
            pubkey: PublicKeyBytes::from(group.to_bytes()),
        }
    }

    /// All partials in: verify each, combine, and sign the lock.
    pub(super) fn after_partials(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let validators = self.build_validators()?;
        let hash = lock_hash(&self.definition, &validators);
        let shares = self.shares.as_ref().map_or(&[][..], Vec::as_slice);
        let share_signatures: Vec<Signature> =
            shares.iter().map(|s| s.sign(&hash).signature).collect();
        let share_signature =
            Signature::aggregate(&share_signatures).map_err(|e| (vec![], e.to_string()))?;
        self.validators = Some(validators);
        self.sent_phase = 6;
        Ok(vec![Action::Broadcast(self.sign(Body::LockSignature {
            lock_hash: hash,
            operator_signature: self.node_key.sign(&hash),
            share_signature,
        }))])
    }

    /// The lock's validators from the agreed keys and everyone's partials.
    ///
    /// Partials are combined first and the combined signatures verified in
    /// one batch against the group keys; only if that fails are partials
    /// checked one by one, to name who sent a bad one.
    pub(super) fn build_validators(&self) -> Result<Vec<DistributedValidator>, (Vec<u32>, String)> {
        let t = self.definition.threshold as usize;
        let fork_version = self.definition.network.genesis_fork_version;
        let public = self.public.clone().unwrap_or_default();
        struct Combined {
            message: DepositMessage,
            deposit_root: phalanx_eth::Root,
            registration: ValidatorRegistration,
            registration_root: phalanx_eth::Root,
            deposit_partials: Vec<PartialSignature>,
            registration_partials: Vec<PartialSignature>,
            deposit: Signature,
            registration_signature: Signature,
        }
        let mut combined = Vec::with_capacity(public.len());
        for (v, ((group, public_shares), spec)) in
            public.iter().zip(&self.definition.validators).enumerate()
        {
            let message = DepositMessage::new(group, spec.credentials(), spec.deposit_amount)
                .map_err(|e| (vec![], e.to_string()))?;
            let registration = self.registration(group, spec.fee_recipient);
            let mut deposit_partials = Vec::with_capacity(public_shares.len());
            let mut registration_partials = Vec::with_capacity(public_shares.len());
            for (sender, public_share) in public_shares.iter().enumerate() {
                let Body::Partials {
                    deposits,
                    registrations,
                } = &self.received[&(4, sender as u32)].body
                else {
                    continue;
                };
                let (Some(deposit), Some(registration_signature)) =
                    (deposits.get(v), registrations.get(v))
                else {
                    return Err((
                        vec![sender as u32],
                        format!("operator {sender} sent too few partial signatures"),
                    ));
                };
                deposit_partials.push(PartialSignature::new(public_share.index, *deposit));
                registration_partials.push(PartialSignature::new(
                    public_share.index,
                    *registration_signature,
                ));
            }
            let deposit = combine(&deposit_partials, t).map_err(|e| (vec![], e.to_string()))?;
            let registration_signature =
                combine(&registration_partials, t).map_err(|e| (vec![], e.to_string()))?;
            combined.push(Combined {
                deposit_root: message.signing_root(fork_version),
                registration_root: compute_signing_root(
                    &registration,
                    application_builder_domain(fork_version),
                ),
                message,
                registration,
                deposit_partials,
                registration_partials,
                deposit,
                registration_signature,
            });
        }
        let sets: Vec<phalanx_crypto::SignatureSet<'_>> = combined
            .iter()
            .zip(&public)
            .flat_map(|(c, (group, _))| {
                [
                    phalanx_crypto::SignatureSet::new(c.deposit_root.as_slice(), group, &c.deposit),
                    phalanx_crypto::SignatureSet::new(
                        c.registration_root.as_slice(),
                        group,
                        &c.registration_signature,
                    ),
                ]
            })
            .collect();
        let mut rng = rand::rngs::OsRng;
        if !phalanx_crypto::batch::verify_signature_sets(&sets, &mut rng) {
            let bad = phalanx_crypto::batch::find_invalid(&sets, &mut rng);
            let v = bad.first().map_or(0, |i| i / 2);
            let (c, (_, public_shares)) = (&combined[v], &public[v]);
            let culprits: Vec<u32> = public_shares
                .iter()
                .zip(c.deposit_partials.iter().zip(&c.registration_partials))
                .enumerate()
                .filter(|(_, (share, (deposit, registration)))| {
                    !share.verify(deposit, c.deposit_root.as_slice())
                        || !share.verify(registration, c.registration_root.as_slice())
                })
                .map(|(sender, _)| sender as u32)
                .collect();
            return Err((
                culprits.clone(),
                format!(
                    "validator {v}: partial signatures from operators {culprits:?} do not verify"
                ),
            ));
        }
        Ok(combined
            .into_iter()
            .zip(&public)
            .map(|(c, (group, public_shares))| DistributedValidator {
                public_key: *group,
                public_shares: public_shares.iter().map(|s| s.key).collect(),
                deposit_data: LaunchpadDeposit::assemble(
                    &c.message,
                    &c.deposit,
                    fork_version,
                    &self.definition.network.name,
                ),
                builder_registration: SignedValidatorRegistration {
                    message: c.registration,
                    signature: c.registration_signature.to_bytes().into(),
                },
            })
            .collect())
    }

    /// All lock signatures in: assemble and verify the lock.
    pub(super) fn after_lock_signatures(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let validators = self.validators.clone().unwrap_or_default();
        let hash = lock_hash(&self.definition, &validators);
        let mut operator_signatures = Vec::new();
        let mut share_signatures = Vec::new();
        for sender in 0..self.n() as u32 {
            let Body::LockSignature {
                lock_hash,
                operator_signature,
                share_signature,
            } = &self.received[&(5, sender)].body
            else {
                continue;
            };
            if *lock_hash != hash {
                return Err((
                    vec![sender],
                    format!("operator {sender} signed a different lock"),
                ));
            }
            operator_signatures.push(hex::encode(operator_signature));
            share_signatures.push(*share_signature);
        }
        let lock = ClusterLock {
            definition: self.definition.clone(),
            validators,
            lock_hash: format!("0x{}", hex::encode(hash)),
            operator_signatures,
            share_signature: Signature::aggregate(&share_signatures)
                .map_err(|e| (vec![], e.to_string()))?,
        };
        // The validators were built and checked here; what is new is the
        // signatures.
        if let Err(error) = lock.verify_signatures() {
            // Find whose signatures fail, to name them.
            let culprits = self.lock_culprits(&hash);
            return Err((
                culprits,
                format!("the assembled lock does not verify: {error}"),
            ));
        }
        self.finished = true;
        let shares = self.shares.take().unwrap_or_default();
        Ok(vec![Action::Done(Box::new(Outcome { lock, shares }))])
    }

    fn lock_culprits(&self, hash: &[u8; 32]) -> Vec<u32> {
        let public = self.public.clone().unwrap_or_default();
        (0..self.n() as u32)
            .filter(|&sender| {
                let Body::LockSignature {
                    operator_signature,
                    share_signature,
                    ..
                } = &self.received[&(5, sender)].body
                else {
                    return true;
                };
                let keys: Vec<_> = public
                    .iter()
                    .map(|(_, shares)| shares[sender as usize].key)
                    .collect();
                !phalanx_p2p::verify(
                    &self.enrs[sender as usize].public_key(),
                    hash,
                    operator_signature,
                ) || !share_signature.fast_aggregate_verify(hash, &keys)
            })
            .collect()
    }
}
