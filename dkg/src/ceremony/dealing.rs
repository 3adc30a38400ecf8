//! Phases 1 to 3: every dealer's deal is checked (shape, proofs of
//! knowledge), echoed so that a dealer who dealt differently to different
//! operators is caught, and then each dealer seals each operator's shares
//! to it.

use phalanx_crypto::threshold::ShareIndex;
use phalanx_p2p::seal;

use super::message::envelope_hash;
use super::{Action, Body, Ceremony};

impl Ceremony {
    /// All deals in: check their shape and proofs, then echo them.
    pub(super) fn after_deals(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let validators = self.definition.validators.len();
        let t = self.definition.threshold as usize;
        for dealer in 0..self.n() as u32 {
            let (commitments, proofs) = self.deal_of(dealer);
            if commitments.len() != validators
                || proofs.len() != validators
                || commitments.iter().any(|c| c.threshold() != t)
            {
                return Err((
                    vec![dealer],
                    format!("operator {dealer}'s deal has the wrong shape"),
                ));
            }
            for (v, (c, proof)) in commitments.iter().zip(proofs).enumerate() {
                if !c.verify_proof(proof, &self.context(dealer, v)) {
                    return Err((
                        vec![dealer],
                        format!("operator {dealer}'s proof of knowledge for validator {v} does not verify"),
                    ));
                }
            }
        }
        let deals = (0..self.n() as u32)
            .map(|d| envelope_hash(&self.received[&(0, d)]))
            .collect();
        self.sent_phase = 2;
        Ok(vec![Action::Broadcast(self.sign(Body::Echo { deals }))])
    }

    /// All echoes in: every operator saw the same deals; send shares.
    pub(super) fn after_echoes(&mut self) -> Result<Vec<Action>, (Vec<u32>, String)> {
        let n = self.n() as u32;
        for dealer in 0..n {
            let mine = envelope_hash(&self.received[&(0, dealer)]);
            for echoer in 0..n {
                let seen = match &self.received[&(1, echoer)].body {
                    Body::Echo { deals } => deals.get(dealer as usize).copied(),
                    _ => None,
                };
                if seen != Some(mine) {
                    return Err((
                        vec![dealer],
                        format!(
                            "operator {dealer} sent different commitments to different operators \
                             (operator {echoer} saw another deal than operator {})",
                            self.me
                        ),
                    ));
                }
            }
        }
        let mut actions = Vec::new();
        for recipient in 0..n {
            let index =
                ShareIndex::new(u64::from(recipient) + 1).map_err(|e| (vec![], e.to_string()))?;
            let mut plaintext = Vec::with_capacity(32 * self.dealings.len());
            for dealing in &self.dealings {
                let share = dealing.share(index).map_err(|e| (vec![], e.to_string()))?;
                plaintext.extend_from_slice(share.to_bytes().as_ref());
            }
            let recipient_key = self.enrs[recipient as usize].public_key();
            let sealed = seal::seal(
                &recipient_key,
                &plaintext,
                &self.seal_context(self.me, recipient),
            )
            .map_err(|e| (vec![recipient], format!("operator {recipient}'s key: {e}")))?;
            plaintext.iter_mut().for_each(|b| *b = 0);
            let envelope = self.sign(Body::Shares { recipient, sealed });
            if recipient == self.me {
                self.received.insert((2, self.me), envelope);
            } else {
                self.sent_shares.insert(recipient, envelope.clone());
                actions.push(Action::Send(recipient, envelope));
            }
        }
        self.sent_phase = 3;
        Ok(actions)
    }
}
