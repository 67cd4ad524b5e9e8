//! Resource sets: `CPU`, `GPU`, `memory` and custom resources, as Ray counts them.
//!
//! Quantities are logical and kept in fixed point (units of 1/10000), so adding and subtracting
//! fractional requests such as `0.1` CPU never drifts.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Fixed-point units per whole resource.
pub const UNIT: i64 = 10_000;

/// Why a resource quantity was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    /// Negative, NaN or infinite amount.
    #[error("resource {name:?}: amount {amount} must be a finite number >= 0")]
    InvalidAmount {
        /// Resource name.
        name: String,
        /// The rejected amount.
        amount: f64,
    },
    /// Amounts are counted in units of 0.0001; a smaller non-zero amount cannot be represented.
    #[error("resource {name:?}: amount {amount} is below the precision of 0.0001")]
    TooPrecise {
        /// Resource name.
        name: String,
        /// The rejected amount.
        amount: f64,
    },
    /// Fractional amounts above one are not allowed (as in Ray: 0.5 or 2, not 1.5).
    #[error("resource {name:?}: amount {amount} above 1 must be a whole number")]
    FractionAboveOne {
        /// Resource name.
        name: String,
        /// The rejected amount.
        amount: f64,
    },
    /// Empty resource name.
    #[error("resource names must not be empty")]
    EmptyName,
    /// A set whose names are out of order or repeated (only a set decoded from the wire).
    #[error("resource {0:?} is out of order or repeated in the set")]
    Unsorted(String),
}

/// A set of named resource quantities.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceSet {
    /// Sorted by name; amounts in units of 1/[`UNIT`]; no zero entries.
    items: Vec<(Arc<str>, i64)>,
}

impl ResourceSet {
    /// Name of the CPU resource.
    pub const CPU: &'static str = "CPU";
    /// Name of the GPU resource.
    pub const GPU: &'static str = "GPU";
    /// Name of the logical memory resource (bytes).
    pub const MEMORY: &'static str = "memory";
    /// Name of the object store memory resource (bytes).
    pub const OBJECT_STORE_MEMORY: &'static str = "object_store_memory";

    /// The empty set.
    pub fn new() -> Self {
        ResourceSet::default()
    }

    /// A set with `n` CPUs.
    pub fn cpus(n: f64) -> Result<Self, ResourceError> {
        let mut s = ResourceSet::new();
        s.set(Self::CPU, n)?;
        Ok(s)
    }

    fn to_units(
        name: &str,
        amount: f64,
        allow_fraction_above_one: bool,
    ) -> Result<i64, ResourceError> {
        if name.is_empty() {
            return Err(ResourceError::EmptyName);
        }
        if !amount.is_finite() || amount < 0.0 {
            return Err(ResourceError::InvalidAmount {
                name: name.into(),
                amount,
            });
        }
        if amount > 1.0 && amount.fract() != 0.0 && !allow_fraction_above_one {
            return Err(ResourceError::FractionAboveOne {
                name: name.into(),
                amount,
            });
        }
        let units = (amount * UNIT as f64).round();
        if amount > 0.0 && units == 0.0 {
            return Err(ResourceError::TooPrecise {
                name: name.into(),
                amount,
            });
        }
        if units > (i64::MAX / 4) as f64 {
            return Err(ResourceError::InvalidAmount {
                name: name.into(),
                amount,
            });
        }
        Ok(units as i64)
    }

    /// Sets a requested amount (a task's or actor's demand). Fractions above one are rejected,
    /// as in Ray; `memory` is a byte count and may be any whole number.
    pub fn set(&mut self, name: &str, amount: f64) -> Result<(), ResourceError> {
        let units = Self::to_units(
            name,
            amount,
            name == Self::MEMORY || name == Self::OBJECT_STORE_MEMORY,
        )?;
        self.set_units(name, units);
        Ok(())
    }

    /// Sets a node capacity, which may be any non-negative amount.
    pub fn set_capacity(&mut self, name: &str, amount: f64) -> Result<(), ResourceError> {
        let units = Self::to_units(name, amount, true)?;
        self.set_units(name, units);
        Ok(())
    }

    fn set_units(&mut self, name: &str, units: i64) {
        match self.items.binary_search_by(|(n, _)| (**n).cmp(name)) {
            Ok(i) if units == 0 => {
                self.items.remove(i);
            }
            Ok(i) => self.items[i].1 = units,
            Err(_) if units == 0 => {}
            Err(i) => self.items.insert(i, (Arc::from(name), units)),
        }
    }

    /// The amount of `name` (0 when absent).
    pub fn get(&self, name: &str) -> f64 {
        self.units(name) as f64 / UNIT as f64
    }

    fn units(&self, name: &str) -> i64 {
        match self.items.binary_search_by(|(n, _)| (**n).cmp(name)) {
            Ok(i) => self.items[i].1,
            Err(_) => 0,
        }
    }

    /// Whether the set has no non-zero entry.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether every amount of `self` is available in `available`.
    pub fn fits_in(&self, available: &ResourceSet) -> bool {
        self.items.iter().all(|(n, u)| available.units(n) >= *u)
    }

    /// The resources of `self` that `capacity` lacks, with the missing amounts.
    pub fn shortfall(&self, capacity: &ResourceSet) -> Vec<(String, f64)> {
        self.items
            .iter()
            .filter(|(n, u)| capacity.units(n) < *u)
            .map(|(n, u)| (n.to_string(), (*u - capacity.units(n)) as f64 / UNIT as f64))
            .collect()
    }

    /// Adds every amount of `other` to `self`.
    pub fn add(&mut self, other: &ResourceSet) {
        for (n, u) in &other.items {
            let cur = self.units(n);
            self.set_units(n, cur + u);
        }
    }

    /// Subtracts every amount of `other` from `self`; amounts may become negative (a node that
    /// lent a blocked task's CPU back and then resumed it is briefly over-committed, as in Ray).
    pub fn subtract(&mut self, other: &ResourceSet) {
        for (n, u) in &other.items {
            let cur = self.units(n);
            self.set_units(n, cur - u);
        }
    }

    /// The amounts of `self` that are above zero: what an over-committed node (see
    /// [`ResourceSet::subtract`]) has free to report.
    ///
    /// ```
    /// use raya_common::ResourceSet;
    /// let mut free = ResourceSet::cpus(1.0).unwrap();
    /// free.subtract(&ResourceSet::cpus(3.0).unwrap());
    /// assert!(free.free_part().is_empty());
    /// ```
    pub fn free_part(&self) -> ResourceSet {
        ResourceSet {
            items: self.items.iter().filter(|(_, u)| *u > 0).cloned().collect(),
        }
    }

    /// Checks a set that asks for resources (a task's or an actor's, as it arrives from another
    /// node): every name non-empty, every amount positive (and at most `i64::MAX / 4` units, so
    /// that sums never overflow), names sorted and unique. Sets built
    /// through this type's methods always pass; a set decoded from the wire may not (a
    /// negative request would make the node that grants it over-commit).
    ///
    /// ```
    /// use raya_common::ResourceSet;
    /// assert!(ResourceSet::cpus(2.0).unwrap().check_request().is_ok());
    /// ```
    pub fn check_request(&self) -> Result<(), ResourceError> {
        let mut last: Option<&str> = None;
        for (n, u) in &self.items {
            if n.is_empty() {
                return Err(ResourceError::EmptyName);
            }
            // What a node could have built: positive, and small enough that sums never overflow.
            if *u <= 0 || *u > i64::MAX / 4 {
                return Err(ResourceError::InvalidAmount {
                    name: n.to_string(),
                    amount: *u as f64 / UNIT as f64,
                });
            }
            if last.is_some_and(|l| l >= &**n) {
                return Err(ResourceError::Unsorted(n.to_string()));
            }
            last = Some(n);
        }
        Ok(())
    }

    /// Iterates over `(name, amount)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.items
            .iter()
            .map(|(n, u)| (&**n, *u as f64 / UNIT as f64))
    }

    /// The set as a map from name to amount.
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        self.iter().map(|(n, a)| (n.to_string(), a)).collect()
    }

    /// Builds a capacity set from a map; every amount must be finite and non-negative.
    pub fn from_capacity_map<'a>(
        map: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<ResourceSet, ResourceError> {
        let mut s = ResourceSet::new();
        for (n, a) in map {
            s.set_capacity(n, a)?;
        }
        Ok(s)
    }
}

impl fmt::Debug for ResourceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for ResourceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, a)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}: {a}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_amounts_add_up_exactly() {
        let mut avail = ResourceSet::cpus(1.0).unwrap();
        let tenth = ResourceSet::cpus(0.1).unwrap();
        for _ in 0..10 {
            assert!(tenth.fits_in(&avail));
            avail.subtract(&tenth);
        }
        assert!(!tenth.fits_in(&avail));
        assert_eq!(avail.get("CPU"), 0.0);
        assert!(avail.is_empty());
    }

    #[test]
    fn invalid_amounts_are_rejected() {
        let mut s = ResourceSet::new();
        assert!(matches!(
            s.set("CPU", -1.0),
            Err(ResourceError::InvalidAmount { .. })
        ));
        assert!(matches!(
            s.set("CPU", f64::NAN),
            Err(ResourceError::InvalidAmount { .. })
        ));
        assert!(matches!(
            s.set("CPU", 1.5),
            Err(ResourceError::FractionAboveOne { .. })
        ));
        assert!(matches!(
            s.set("CPU", 0.00001),
            Err(ResourceError::TooPrecise { .. })
        ));
        assert!(matches!(s.set("", 1.0), Err(ResourceError::EmptyName)));
        assert!(s.set("memory", 1.5e9 + 0.5).is_ok());
        assert!(s.set_capacity("CPU", 2.5).is_ok());
    }

    #[test]
    fn shortfall_names_what_is_missing() {
        let mut need = ResourceSet::cpus(4.0).unwrap();
        need.set("foo", 1.0).unwrap();
        let cap = ResourceSet::cpus(2.0).unwrap();
        let mut short = need.shortfall(&cap);
        short.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            short,
            vec![("CPU".to_string(), 2.0), ("foo".to_string(), 1.0)]
        );
    }
}
