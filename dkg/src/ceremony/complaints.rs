//! Phases 4 and 5: this operator opens and checks the shares dealt to it
//! and broadcasts its complaints; every complaint is judged the same way
//! everywhere (the dealer or the accuser is named); without any, the key
//! shares and public keys are formed and the deposits and builder
//! registrations are signed with them.

use phalanx_crypto::dkg::{sum_shares, Commitments};
use phalanx_crypto::threshold::{PublicShare, SecretShare, ShareIndex};
use phalanx_crypto::SecretKey;
use phalanx_eth::signing::{application_builder_domain, compute_signing_root};
use phalanx_eth::validator::DepositMessage;
use phalanx_p2p::seal;

use super::message::signing_bytes;
use super::{Action, Body, Ceremony, Complaint};
use crate::error::DkgError;

impl Ceremony {
    /// Opens and checks the shares a dealer sent to `recipient`.
    fn check_shares(
        &self,
        dealer: u32,
        recipient: u32,
        plaintext: &[u8],
    ) -> Result<Vec<SecretKey>, String> {
        let validators = self.definition.validators.len();
        if plaintext.len() != 32 * validators {
            return Err("wrong length".into());
        }
        let index = ShareIndex::new(u64::from(recipient) + 1).map_err(|e| e.to_string())?;
        let (commitments, _) = self.deal_of(dealer);
        plaintext
            .chunks(32)
            .zip(commitments)
            .enumerate()
            .map(|(v, (bytes, c))| {
                let share = SecretKey::from_bytes(bytes)
                    .map_err(|_| format!("validator {v}: not a key"))?;
                if c.verify_share(index, &share) {
                    Ok(share)
                } else {
                    Err(format!(
                        "validator {v}: share does not match the commitments"
                    ))
                }
            })
            .collect()
    }

    /// All shares in: check mine, broadcast complaints (or none).
    pub(super) fn after_shares(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let mut complaints = Vec::new();
        for dealer in 0..self.n() as u32 {
            let envelope = self.received[&(2, dealer)].clone();
            let Body::Shares { sealed, .. } = &envelope.body else {
                continue;
            };
            let context = self.seal_context(dealer, self.me);
            let valid = seal::open(&self.node_key, sealed, &context)
                .map_err(|e| e.to_string())
                .and_then(|plaintext| self.check_shares(dealer, self.me, &plaintext));
            if let Ok(shares) = &valid {
                self.verified_shares.insert(dealer, shares.clone());
            }
            if let Err(problem) = valid {
                tracing::warn!(dealer, %problem, "shares from a dealer do not verify");
                let disclosure = seal::disclose(&self.node_key, sealed)
                    .map_err(|e| (vec![dealer], e.to_string()))?;
                complaints.push(Complaint {
                    dealer,
                    shares: Box::new(envelope),
                    disclosure,
                });
            }
        }
        self.sent_phase = 4;
        Ok(vec![Action::Broadcast(
            self.sign(Body::Complaints { complaints }),
        )])
    }

    /// All complaints in: judge them; without any, form the keys and sign
    /// deposits and registrations.
    pub(super) fn after_complaints(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let mut culprits = Vec::new();
        let mut reasons = Vec::new();
        for accuser in 0..self.n() as u32 {
            let Body::Complaints { complaints } = &self.received[&(3, accuser)].body else {
                continue;
            };
            for complaint in complaints {
                let (guilty, why) = self.judge(accuser, complaint);
                culprits.push(guilty);
                reasons.push(why);
            }
        }
        if !culprits.is_empty() {
            culprits.sort_unstable();
            culprits.dedup();
            return Err((culprits, reasons.join("; ")));
        }
        self.form_keys().map_err(|e| (vec![], e.to_string()))?;
        let shares = self.shares.as_ref().map_or(&[][..], Vec::as_slice);
        let fork_version = self.definition.network.genesis_fork_version;
        let public = self.public.as_ref().map_or(&[][..], Vec::as_slice);
        let mut deposits = Vec::new();
        let mut registrations = Vec::new();
        for ((share, spec), (group, _)) in
            shares.iter().zip(&self.definition.validators).zip(public)
        {
            let message = DepositMessage::new(group, spec.credentials(), spec.deposit_amount)
                .map_err(|e| (vec![], e.to_string()))?;
            deposits.push(
                share
                    .sign(message.signing_root(fork_version).as_slice())
                    .signature,
            );
            let registration = self.registration(group, spec.fee_recipient);
            let root =
                compute_signing_root(&registration, application_builder_domain(fork_version));
            registrations.push(share.sign(root.as_slice()).signature);
        }
        self.sent_phase = 5;
        Ok(vec![Action::Broadcast(self.sign(Body::Partials {
            deposits,
            registrations,
        }))])
    }

    /// Decides a complaint: the dealer if the disclosed shares are bad,
    /// the accuser if they are good or the complaint does not hold up.
    fn judge(&self, accuser: u32, complaint: &Complaint) -> (u32, String) {
        let dealer = complaint.dealer;
        let envelope = &complaint.shares;
        let Some(enr) = self.enrs.get(dealer as usize) else {
            return (
                accuser,
                format!("operator {accuser} accused a non-operator"),
            );
        };
        let signed = phalanx_p2p::verify(
            &enr.public_key(),
            &signing_bytes(&self.definition_hash, dealer, &envelope.body),
            &envelope.signature,
        );
        let Body::Shares { recipient, sealed } = &envelope.body else {
            return (
                accuser,
                format!("operator {accuser}'s complaint holds no shares"),
            );
        };
        if !signed || envelope.sender != dealer || *recipient != accuser {
            return (accuser, format!("operator {accuser}'s complaint against {dealer} is not backed by {dealer}'s signed shares"));
        }
        let accuser_key = self.enrs[accuser as usize].public_key();
        match seal::open_disclosed(
            &accuser_key,
            sealed,
            &complaint.disclosure,
            &self.seal_context(dealer, accuser),
        ) {
            Err(seal::SealError::BadDisclosure) | Err(seal::SealError::InvalidPoint) => (
                accuser,
                format!("operator {accuser}'s disclosure against {dealer} does not verify"),
            ),
            Err(seal::SealError::Authentication) => (
                dealer,
                format!("operator {dealer} sent operator {accuser} shares that do not decrypt"),
            ),
            Ok(plaintext) => match self.check_shares(dealer, accuser, &plaintext) {
                Err(problem) => (
                    dealer,
                    format!("operator {dealer} sent operator {accuser} bad shares ({problem})"),
                ),
                Ok(_) => (
                    accuser,
                    format!("operator {accuser} falsely accused operator {dealer}"),
                ),
            },
        }
    }

    /// This operator's key shares and every validator's public keys, from
    /// the verified shares and the agreed commitments.
    pub(super) fn form_keys(&mut self) -> Result<(), DkgError> {
        let n = self.n() as u32;
        let index = ShareIndex::new(u64::from(self.me) + 1)?;
        let mut per_validator: Vec<Vec<SecretKey>> =
            vec![Vec::new(); self.definition.validators.len()];
        for dealer in 0..n {
            let Body::Shares { sealed, .. } = &self.received[&(2, dealer)].body else {
                continue;
            };
            let shares = match self.verified_shares.get(&dealer) {
                Some(shares) => shares.clone(),
                None => {
                    let plaintext =
                        seal::open(&self.node_key, sealed, &self.seal_context(dealer, self.me))
                            .map_err(|e| DkgError::Input(e.to_string()))?;
                    self.check_shares(dealer, self.me, &plaintext)
                        .map_err(DkgError::Input)?
                }
            };
            for (v, share) in shares.into_iter().enumerate() {
                per_validator[v].push(share);
            }
        }
        let mut shares = Vec::new();
        let mut public = Vec::new();
        for (v, dealt) in per_validator.iter().enumerate() {
            shares.push(SecretShare::new(index, sum_shares(dealt)?));
            let all: Vec<Commitments> = (0..n).map(|d| self.deal_of(d).0[v].clone()).collect();
            let total = Commitments::sum(&all)?;
            let group = *total
                .constant()
                .ok_or_else(|| DkgError::Input("empty commitments".into()))?;
            let public_shares = (0..n)
                .map(|j| {
                    let index = ShareIndex::new(u64::from(j) + 1)?;
                    Ok(PublicShare::new(index, total.evaluate(index)?))
                })
                .collect::<Result<Vec<_>, phalanx_crypto::Error>>()?;
            public.push((group, public_shares));
        }
        self.shares = Some(shares);
        self.public = Some(public);
        self.verified_shares.clear();
        Ok(())
    }
}
