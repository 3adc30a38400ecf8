//! Block proposals: randao reveal, produce, check, sign, publish.

use phalanx_eth::api::ProposerDuty;
use phalanx_eth::block_contents::{ProducedBlockData, Signed, SignedBlockContents};
use phalanx_eth::{EthSpec, ForkName, Slot};

use super::client::Vc;
use super::stats::{Duty, DutyError, Tally};

impl<E: EthSpec> Vc<E> {
    pub(super) async fn propose(&self, slot: Slot, fork: ForkName) {
        let duties = match self.proposer_duties(self.roots.epoch(slot), false).await {
            Ok(duties) => duties,
            Err(error) => {
                self.shared.record_error(slot, "proposer_duties", &error);
                return;
            }
        };
        for duty in duties.iter().filter(|duty| duty.slot == slot) {
            let tally = Tally::start(&self.shared, Duty::Proposer, slot, 1);
            match self.propose_block(slot, fork, duty).await {
                Ok(()) => tally.submitted(1),
                Err((endpoint, error)) => tally.failed(1, endpoint, &error),
            }
        }
    }

    async fn propose_block(
        &self,
        slot: Slot,
        fork: ForkName,
        duty: &ProposerDuty,
    ) -> Result<(), (&'static str, DutyError)> {
        let validator = self.validator(&duty.pubkey).ok_or((
            "produce_block",
            DutyError::Unusable("a proposer duty for a key this client does not hold".into()),
        ))?;
        let randao_reveal = self.sign(validator, self.roots.randao(self.roots.epoch(slot)));
        let produced = self
            .client
            .produce_block::<E>(slot, &randao_reveal, self.graffiti, None)
            .await
            .map_err(|error| ("produce_block", error.into()))?;
        let (block_slot, block_root) = match &produced.data {
            ProducedBlockData::Full(block) => (block.slot(), block.tree_hash_root()),
            ProducedBlockData::Contents(contents) => {
                (contents.block.slot(), contents.block.tree_hash_root())
            }
            ProducedBlockData::Blinded(block) => (block.slot(), block.tree_hash_root()),
        };
        // A real client never signs a block for another slot (slashable).
        if block_slot != slot {
            return Err((
                "produce_block",
                DutyError::Unusable(format!(
                    "the node produced a block for slot {block_slot}, not {slot}"
                )),
            ));
        }
        let signature = self.sign(validator, self.roots.block(slot, block_root));
        if produced.fork != fork {
            return Err((
                "produce_block",
                DutyError::Unusable(format!(
                    "the node produced a {} block in a {fork} slot",
                    produced.fork
                )),
            ));
        }
        let blocks = "eth/v2/beacon/blocks";
        let result = match produced.data {
            ProducedBlockData::Full(message) => {
                let signed = Signed { message, signature };
                let publish = self.client.publish_block(fork, &signed, false);
                self.send("publish_block", blocks, Some(fork), &signed, publish)
                    .await
            }
            ProducedBlockData::Contents(contents) => {
                let signed = SignedBlockContents {
                    signed_block: Signed {
                        message: contents.block,
                        signature,
                    },
                    kzg_proofs: contents.kzg_proofs,
                    blobs: contents.blobs,
                };
                let publish = self.client.publish_block(fork, &signed, false);
                self.send("publish_block", blocks, Some(fork), &signed, publish)
                    .await
            }
            ProducedBlockData::Blinded(message) => {
                let signed = Signed { message, signature };
                let publish = self.client.publish_block(fork, &signed, true);
                self.send(
                    "publish_blinded_block",
                    "eth/v2/beacon/blinded_blocks",
                    Some(fork),
                    &signed,
                    publish,
                )
                .await
            }
        };
        result.map_err(|error| ("publish_block", error))
    }
}
