//! Devnet network configurations: the one builder for the small networks of
//! tests, demos and the simulator. It starts from [`NetworkConfig::devnet`]
//! (every fork up to the genesis fork from genesis, the rest never) and
//! sets the preset and the epochs of later forks.

use crate::config::{NetworkConfig, PresetBase};
use crate::fork::ForkName;
use crate::primitives::Epoch;

/// A devnet's network configuration, built step by step.
///
/// ```
/// use phalanx_eth::config::PresetBase;
/// use phalanx_eth::devnet::Devnet;
/// use phalanx_eth::{Epoch, ForkName};
///
/// let network = Devnet::new(ForkName::Deneb, 2000)
///     .preset(PresetBase::Mainnet)
///     .upgrade(ForkName::Electra, Epoch(4))
///     .build();
/// assert_eq!(network.fork_at(Epoch(3)), Ok(ForkName::Deneb));
/// assert_eq!(network.fork_at(Epoch(4)), Ok(ForkName::Electra));
/// assert_eq!(network.slots_per_epoch(), 32);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Devnet {
    genesis_fork: ForkName,
    slot_duration_ms: u64,
    preset: PresetBase,
    upgrades: Vec<(ForkName, Epoch)>,
}

impl Devnet {
    /// A devnet on the minimal preset, in `genesis_fork` from genesis, with
    /// slots of `slot_duration_ms`; later forks never come.
    pub fn new(genesis_fork: ForkName, slot_duration_ms: u64) -> Devnet {
        Devnet {
            genesis_fork,
            slot_duration_ms,
            preset: PresetBase::Minimal,
            upgrades: Vec::new(),
        }
    }

    /// On `preset` instead of the minimal one.
    pub fn preset(mut self, preset: PresetBase) -> Devnet {
        self.preset = preset;
        self
    }

    /// With `fork` from `epoch`. A fork at or before the genesis fork is
    /// already there from genesis, and the first epoch given for a fork
    /// counts.
    pub fn upgrade(mut self, fork: ForkName, epoch: Epoch) -> Devnet {
        self.upgrades.push((fork, epoch));
        self
    }

    /// With each `(fork, epoch)` of `upgrades`, as [`Devnet::upgrade`].
    pub fn upgrades(mut self, upgrades: &[(ForkName, Epoch)]) -> Devnet {
        self.upgrades.extend_from_slice(upgrades);
        self
    }

    /// The network configuration, its forks in the order configs are read
    /// in (by epoch, then fork), so that a round trip through a beacon
    /// node's spec endpoint gives an equal config.
    pub fn build(&self) -> NetworkConfig {
        let mut network = NetworkConfig::devnet(self.genesis_fork, self.slot_duration_ms);
        network.preset = self.preset;
        for scheduled in &mut network.forks {
            let upgrade = self
                .upgrades
                .iter()
                .find(|(fork, _)| Some(*fork) == scheduled.fork && *fork > self.genesis_fork);
            if let Some((_, epoch)) = upgrade {
                scheduled.epoch = *epoch;
            }
        }
        network.forks.sort_by_key(|f| (f.epoch, f.fork));
        network
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FAR_FUTURE_EPOCH;

    #[test]
    fn without_options_it_is_the_plain_devnet() {
        for fork in ForkName::ALL {
            assert_eq!(
                Devnet::new(fork, 1500).build(),
                NetworkConfig::devnet(fork, 1500),
                "{fork}"
            );
        }
    }

    #[test]
    fn the_preset_is_chosen() {
        let minimal = Devnet::new(ForkName::Electra, 1000).build();
        let mainnet = Devnet::new(ForkName::Electra, 1000)
            .preset(PresetBase::Mainnet)
            .build();
        assert_eq!(minimal.slots_per_epoch(), 8);
        assert_eq!(mainnet.slots_per_epoch(), 32);
        assert_eq!(mainnet.preset, PresetBase::Mainnet);
        assert_eq!(mainnet.slot_duration_ms, 1000);
    }

    #[test]
    fn later_forks_come_at_their_epochs_in_order() {
        let network = Devnet::new(ForkName::Deneb, 1000)
            .upgrades(&[(ForkName::Fulu, Epoch(9)), (ForkName::Electra, Epoch(3))])
            .build();
        assert_eq!(network.fork_at(Epoch(0)), Ok(ForkName::Deneb));
        assert_eq!(network.fork_at(Epoch(2)), Ok(ForkName::Deneb));
        assert_eq!(network.fork_at(Epoch(3)), Ok(ForkName::Electra));
        assert_eq!(network.fork_at(Epoch(9)), Ok(ForkName::Fulu));
        let epochs: Vec<Epoch> = network.forks.iter().map(|f| f.epoch).collect();
        assert!(
            epochs.windows(2).all(|pair| pair[0] <= pair[1]),
            "{epochs:?}"
        );
    }

    #[test]
    fn forks_at_genesis_stay_there_and_the_first_epoch_counts() {
        let network = Devnet::new(ForkName::Electra, 1000)
            .upgrade(ForkName::Deneb, Epoch(5))
            .upgrade(ForkName::Fulu, Epoch(2))
            .upgrade(ForkName::Fulu, Epoch(7))
            .build();
        let deneb = network
            .forks
            .iter()
            .find(|f| f.fork == Some(ForkName::Deneb));
        assert_eq!(deneb.map(|f| f.epoch), Some(Epoch(0)));
        assert_eq!(network.fork_at(Epoch(2)), Ok(ForkName::Fulu));
        let plain = Devnet::new(ForkName::Electra, 1000).build();
        let fulu = plain.forks.iter().find(|f| f.fork == Some(ForkName::Fulu));
        assert_eq!(fulu.map(|f| f.epoch), Some(FAR_FUTURE_EPOCH));
    }

    #[test]
    fn a_built_config_round_trips_through_the_spec() {
        let network = Devnet::new(ForkName::Capella, 1500)
            .preset(PresetBase::Mainnet)
            .upgrade(ForkName::Electra, Epoch(3))
            .upgrade(ForkName::Deneb, Epoch(1))
            .build();
        let read = NetworkConfig::from_spec(&network.to_spec_json()).expect("spec");
        assert_eq!(read, network);
    }
}
