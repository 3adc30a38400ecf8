//! Named forks, in order, and the errors for names this build does not know.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A consensus fork, as the `Eth-Consensus-Version` header and configs name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ForkName {
    /// Genesis.
    Phase0,
    /// Sync committees.
    Altair,
    /// The merge.
    Bellatrix,
    /// Withdrawals.
    Capella,
    /// Blobs (EIP-4844).
    Deneb,
    /// Pectra's consensus half: committee bits, execution requests.
    Electra,
    /// PeerDAS.
    Fulu,
}

impl ForkName {
    /// The newest fork this build knows: the layout used where a fork the
    /// config schedules is unknown to this build (see
    /// [`crate::config::NetworkConfig::layout_fork_at_slot`]).
    pub const LATEST: ForkName = ForkName::Fulu;

    /// Every fork, oldest first.
    pub const ALL: [ForkName; 7] = [
        ForkName::Phase0,
        ForkName::Altair,
        ForkName::Bellatrix,
        ForkName::Capella,
        ForkName::Deneb,
        ForkName::Electra,
        ForkName::Fulu,
    ];

    /// The lower-case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ForkName::Phase0 => "phase0",
            ForkName::Altair => "altair",
            ForkName::Bellatrix => "bellatrix",
            ForkName::Capella => "capella",
            ForkName::Deneb => "deneb",
            ForkName::Electra => "electra",
            ForkName::Fulu => "fulu",
        }
    }

    /// Whether attestations use the Electra layout (committee bits).
    pub fn electra_enabled(self) -> bool {
        self >= ForkName::Electra
    }
}

impl fmt::Display for ForkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ForkName {
    type Err = Error;

    fn from_str(name: &str) -> Result<ForkName, Error> {
        let lower = name.to_ascii_lowercase();
        ForkName::ALL
            .into_iter()
            .find(|fork| fork.as_str() == lower)
            .ok_or_else(|| Error::UnknownFork(name.to_string()))
    }
}

impl serde::Serialize for ForkName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ForkName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_errors() {
        for fork in ForkName::ALL {
            assert_eq!(fork.as_str().parse::<ForkName>().ok(), Some(fork));
        }
        assert_eq!("ELECTRA".parse::<ForkName>().ok(), Some(ForkName::Electra));
        assert_eq!(
            "gloas".parse::<ForkName>(),
            Err(Error::UnknownFork("gloas".into()))
        );
        assert!(ForkName::Fulu.electra_enabled() && !ForkName::Deneb.electra_enabled());
    }
}
