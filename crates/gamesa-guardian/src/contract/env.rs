//! The values a contract is evaluated against: scalars, and lists whose members are
//! keyed (by component id, for example) so one member can be updated in place.
//!
//! # Invariants
//! - a value that is not known is absent (a scalar) or `None` (a list member); it is
//!   never stored as zero

use std::{
    collections::{BTreeMap, HashMap},
    hash::{BuildHasherDefault, Hasher},
};

/// FNV-1a: a fixed, seedless hash. Name lookups are the hot path of evaluation, and a
/// hash lookup is several times cheaper than walking a `BTreeMap` of dotted names that
/// share long prefixes. No output ever iterates these maps, and without a seed they
/// behave the same on every run anyway.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type NameMap<V> = HashMap<String, V, BuildHasherDefault<Fnv>>;

/// Scalar and list values for one evaluation. Lists keep their members in key order, so
/// folds (a floating-point sum depends on its order) are deterministic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Env {
    scalars: NameMap<f64>,
    lists: NameMap<BTreeMap<String, Option<f64>>>,
}

impl Env {
    pub fn new() -> Env {
        Env::default()
    }

    /// Sets a scalar. Allocates only the first time a name is set.
    pub fn set_scalar(&mut self, name: &str, value: f64) {
        match self.scalars.get_mut(name) {
            Some(slot) => *slot = value,
            None => {
                self.scalars.insert(name.to_owned(), value);
            }
        }
    }

    /// Forgets a scalar: it becomes a missing value. Returns what it held.
    pub fn remove_scalar(&mut self, name: &str) -> Option<f64> {
        self.scalars.remove(name)
    }

    pub fn scalar(&self, name: &str) -> Option<f64> {
        self.scalars.get(name).copied()
    }

    /// Declares a list, empty unless it already has members (an empty list counts 0 and
    /// sums to 0; a list never declared is a missing value).
    pub fn declare_list(&mut self, list: &str) {
        if !self.lists.contains_key(list) {
            self.lists.insert(list.to_owned(), BTreeMap::new());
        }
    }

    /// Sets one member of a list (declaring the list if needed); `None` marks a member
    /// whose value is unknown this time.
    pub fn set_list_item(&mut self, list: &str, item: &str, value: Option<f64>) {
        if let Some(slot) = self
            .lists
            .get_mut(list)
            .and_then(|members| members.get_mut(item))
        {
            *slot = value;
            return;
        }
        self.declare_list(list);
        if let Some(members) = self.lists.get_mut(list) {
            members.insert(item.to_owned(), value);
        }
    }

    /// Removes one member of a list (the list stays declared). Returns what it held:
    /// `None` when there was no such member.
    pub fn remove_list_item(&mut self, list: &str, item: &str) -> Option<Option<f64>> {
        self.lists.get_mut(list)?.remove(item)
    }

    /// The members of a list in key order, or `None` when the list is not declared.
    pub fn list(&self, list: &str) -> Option<impl ExactSizeIterator<Item = (&str, Option<f64>)>> {
        self.lists
            .get(list)
            .map(|members| members.iter().map(|(key, value)| (key.as_str(), *value)))
    }

    /// One member of a list: `None` when absent, `Some(None)` when its value is unknown.
    pub fn list_item(&self, list: &str, item: &str) -> Option<Option<f64>> {
        self.lists.get(list)?.get(item).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keep_key_order_and_unknown_members() {
        let mut env = Env::new();
        env.set_list_item("power.limit_mw", "gpu0", Some(200.0));
        env.set_list_item("power.limit_mw", "cpu", None);
        env.set_list_item("power.limit_mw", "gpu0", Some(250.0));
        let members: Vec<_> = env.list("power.limit_mw").unwrap().collect();
        assert_eq!(members, vec![("cpu", None), ("gpu0", Some(250.0))]);
        assert_eq!(env.list_item("power.limit_mw", "cpu"), Some(None));
        assert!(env.list("power.draw_mw").is_none());
        env.declare_list("power.draw_mw");
        assert_eq!(env.list("power.draw_mw").unwrap().len(), 0);
    }
}
