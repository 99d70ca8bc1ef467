//! Market settings: how long leases last and which pool strategy each resource uses.

use std::num::NonZeroU64;

use gamesa_proto::Resource;

use crate::Strategy;

/// Ticks per epoch when the runtime does not say (one second at 10 Hz).
pub const DEFAULT_EPOCH_TICKS: NonZeroU64 = NonZeroU64::MIN.saturating_add(9);

/// Settings of an [`Exchange`](crate::Exchange), indexed by [`Resource::index`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketConfig {
    /// How many ticks a lease lasts, per resource.
    pub lease_ticks: [NonZeroU64; 7],
    /// The pool strategy of each resource.
    pub strategies: [Strategy; 7],
}

impl MarketConfig {
    /// Leases of one epoch for every resource, and the default strategies.
    pub fn new(epoch_ticks: NonZeroU64) -> MarketConfig {
        MarketConfig {
            lease_ticks: [epoch_ticks; 7],
            strategies: Resource::ALL.map(Strategy::default_for),
        }
    }

    pub fn with_lease_ticks(mut self, resource: Resource, ticks: NonZeroU64) -> MarketConfig {
        self.lease_ticks[resource.index()] = ticks;
        self
    }

    pub fn with_strategy(mut self, resource: Resource, strategy: Strategy) -> MarketConfig {
        self.strategies[resource.index()] = strategy;
        self
    }

    pub fn lease_ticks(&self, resource: Resource) -> NonZeroU64 {
        self.lease_ticks[resource.index()]
    }

    pub fn strategy(&self, resource: Resource) -> Strategy {
        self.strategies[resource.index()]
    }
}

impl Default for MarketConfig {
    fn default() -> MarketConfig {
        MarketConfig::new(DEFAULT_EPOCH_TICKS)
    }
}
