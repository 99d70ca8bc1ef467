//! The schema of a contract: which scalar and list variables exist, so that a typo in
//! config is caught when the contract is parsed, not when it is first evaluated.

use std::collections::BTreeSet;

/// The known variable names. A name is either a scalar (`gpu0.temp_c`) or a list
/// (`power.limit_mw`, used inside `sum`, `max`, `min` or `count`), never both: adding a
/// name as one kind removes it from the other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    scalars: BTreeSet<String>,
    lists: BTreeSet<String>,
}

impl Schema {
    pub fn new() -> Schema {
        Schema::default()
    }

    /// Declares a scalar variable.
    pub fn add_scalar(&mut self, name: impl Into<String>) -> &mut Schema {
        let name = name.into();
        self.lists.remove(&name);
        self.scalars.insert(name);
        self
    }

    /// Declares a list variable.
    pub fn add_list(&mut self, name: impl Into<String>) -> &mut Schema {
        let name = name.into();
        self.scalars.remove(&name);
        self.lists.insert(name);
        self
    }

    pub fn with_scalar(mut self, name: impl Into<String>) -> Schema {
        self.add_scalar(name);
        self
    }

    pub fn with_list(mut self, name: impl Into<String>) -> Schema {
        self.add_list(name);
        self
    }

    pub fn has_scalar(&self, name: &str) -> bool {
        self.scalars.contains(name)
    }

    pub fn has_list(&self, name: &str) -> bool {
        self.lists.contains(name)
    }

    /// Scalar names, in order.
    pub fn scalars(&self) -> impl Iterator<Item = &str> {
        self.scalars.iter().map(String::as_str)
    }

    /// List names, in order.
    pub fn lists(&self) -> impl Iterator<Item = &str> {
        self.lists.iter().map(String::as_str)
    }
}
