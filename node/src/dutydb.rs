//! The decided-value store: what consensus decided for each duty and
//! validator, served to the validator client. A second, different value for
//! the same (duty, validator) is refused, so the node can never hand its
//! validator client two conflicting things to sign for one duty.

use std::collections::BTreeMap;

use phalanx_eth::{PublicKeyBytes, Slot};

use crate::duty::Duty;

/// Storing a decided value failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// A different value was already decided for this duty and validator.
    #[error("{duty}: validator {validator} already has a different decided value")]
    DifferentValue {
        /// The duty.
        duty: Duty,
        /// The validator.
        validator: PublicKeyBytes,
    },
}

/// The outcome of storing a decided value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// New.
    New,
    /// The same value again.
    Same,
}

/// Decided values by duty and validator.
#[derive(Debug)]
pub struct DutyDb<V> {
    values: BTreeMap<(Duty, PublicKeyBytes), V>,
}

impl<V> Default for DutyDb<V> {
    fn default() -> Self {
        DutyDb {
            values: BTreeMap::new(),
        }
    }
}

impl<V: Clone + PartialEq> DutyDb<V> {
    /// An empty store.
    pub fn new() -> DutyDb<V> {
        DutyDb::default()
    }

    /// Stores a decided value, refusing a different one for the same key.
    pub fn store(
        &mut self,
        duty: Duty,
        validator: PublicKeyBytes,
        value: V,
    ) -> Result<Stored, Conflict> {
        match self.values.get(&(duty, validator)) {
            Some(existing) if *existing == value => Ok(Stored::Same),
            Some(_) => Err(Conflict::DifferentValue { duty, validator }),
            None => {
                self.values.insert((duty, validator), value);
                Ok(Stored::New)
            }
        }
    }

    /// Stores `value` over whatever was there: only for the simulator's
    /// deliberately defective node ([`crate::core::Defects`]).
    pub(crate) fn replace(&mut self, duty: Duty, validator: PublicKeyBytes, value: V) {
        self.values.insert((duty, validator), value);
    }

    /// The decided value, if any.
    pub fn get(&self, duty: &Duty, validator: &PublicKeyBytes) -> Option<&V> {
        self.values.get(&(*duty, *validator))
    }

    /// Forgets duties of slots before `slot` (after their deadlines).
    pub fn expire_before(&mut self, slot: Slot) {
        self.values.retain(|(duty, _), _| duty.slot >= slot);
    }

    /// Stored values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duty::DutyType;

    #[test]
    fn a_second_different_value_is_refused() {
        let mut db = DutyDb::new();
        let duty = Duty::new(Slot(5), DutyType::Attester);
        let validator = PublicKeyBytes::repeat_byte(1);
        assert_eq!(db.store(duty, validator, "a"), Ok(Stored::New));
        assert_eq!(db.store(duty, validator, "a"), Ok(Stored::Same));
        assert!(db.store(duty, validator, "b").is_err());
        assert_eq!(db.get(&duty, &validator), Some(&"a"));
        // Other validators and duties are independent.
        assert_eq!(
            db.store(duty, PublicKeyBytes::repeat_byte(2), "b"),
            Ok(Stored::New)
        );
        assert_eq!(
            db.store(Duty::new(Slot(6), DutyType::Attester), validator, "b"),
            Ok(Stored::New)
        );
        db.expire_before(Slot(6));
        assert_eq!(db.len(), 1);
        assert!(db.get(&duty, &validator).is_none());
    }
}
