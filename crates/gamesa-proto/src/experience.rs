//! [`Experience`]: one epoch of a power-buying agent's past — the state it saw, the
//! power it held and bought, and the work that came of it — as the journal keeps it
//! (`docs/journal.md`) and ingress clients read it (`query experiences`). An agent may
//! take its own back at start (`gamesa_agent::Agent::warm`) to warm a learned model
//! across restarts.

use crate::Tick;
use serde::{Deserialize, Serialize};

/// One epoch of one power-buying agent, for its component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experience {
    /// The epoch's first tick (of the run it was journaled in).
    pub first_tick: Tick,
    /// Ticks the sample covers (an epoch, or less at a run's end).
    pub ticks: u64,
    pub component: String,
    /// Mean busy share, ‰.
    pub utilization_permille: u16,
    /// Mean draw, mW, over the ticks that read one.
    pub power_mw: Option<u64>,
    /// Hottest reading, m°C.
    pub temp_mc: Option<i32>,
    /// Mean power limit in force (dry-run limits included), mW.
    pub limit_mw: Option<u64>,
    /// Work done in the epoch: the component's progress counter's growth, millionths of
    /// a unit, when the workload reports one.
    pub progress_micro: Option<u64>,
    /// Power budget bought in fills the guardian allowed, mW, summed over the fills.
    pub bought_mw: u64,
    /// The mean price paid per unit, weighted by quantity, when anything was bought.
    pub mean_price: Option<f64>,
}
