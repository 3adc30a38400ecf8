//! Fee recipients (`prepare_beacon_proposer`, each epoch) and builder
//! registrations (once at start).

use std::sync::Arc;

use phalanx_eth::api::ProposerPreparation;
use phalanx_eth::validator::{SignedValidatorRegistration, ValidatorRegistration};
use phalanx_eth::{EthSpec, Slot};

use super::client::Vc;
use super::stats::{Duty, Tally};
use super::{FEE_RECIPIENT, GAS_LIMIT};

impl<E: EthSpec> Vc<E> {
    pub(super) async fn prepare_proposers(&self, slot: Slot) {
        let preparations: Vec<ProposerPreparation> = self
            .our_indices()
            .into_iter()
            .map(|validator_index| ProposerPreparation {
                validator_index,
                fee_recipient: FEE_RECIPIENT,
            })
            .collect();
        if preparations.is_empty() {
            return;
        }
        let tally = Tally::start(
            &self.shared,
            Duty::PrepareProposer,
            slot,
            preparations.len(),
        );
        let result = self
            .send(
                "prepare_beacon_proposer",
                "eth/v1/validator/prepare_beacon_proposer",
                None,
                &preparations,
                self.client.prepare_beacon_proposer(&preparations),
            )
            .await;
        tally.settle("prepare_beacon_proposer", preparations.len(), result);
    }

    /// Registers every known validator with the builder network, once.
    pub(super) async fn register(self: Arc<Self>, slot: Slot) {
        let positions: Vec<usize> = self.known_indices().values().copied().collect();
        let registrations: Vec<SignedValidatorRegistration> = positions
            .iter()
            .filter_map(|&position| self.validators.get(position))
            .map(|validator| {
                let message = ValidatorRegistration {
                    fee_recipient: FEE_RECIPIENT,
                    gas_limit: GAS_LIMIT,
                    timestamp: self.genesis.genesis_time,
                    pubkey: validator.pubkey,
                };
                let signature = self.sign(validator, self.roots.registration(&message));
                SignedValidatorRegistration { message, signature }
            })
            .collect();
        if registrations.is_empty() {
            return;
        }
        let tally = Tally::start(&self.shared, Duty::Registration, slot, registrations.len());
        let result = self
            .send(
                "register_validators",
                "eth/v1/validator/register_validator",
                None,
                &registrations,
                self.client.register_validators(&registrations),
            )
            .await;
        tally.settle("register_validator", registrations.len(), result);
    }
}
