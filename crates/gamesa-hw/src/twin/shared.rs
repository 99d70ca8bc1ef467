//! The one twin that the twin's sensors and actuator both drive, behind a mutex, plus
//! the handle the runtime keeps to read the report at the end.
//!
//! # Invariants
//! - a poisoned lock is taken over rather than propagated: every `Twin` method leaves
//!   the model consistent between statements that could panic, and none of them panic.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Trace, Twin, TwinActuator, TwinReport, TwinSensors};

/// A twin shared by its [`TwinSensors`] and [`TwinActuator`]. Cloning shares the same
/// twin.
#[derive(Debug, Clone)]
pub struct SharedTwin {
    twin: Arc<Mutex<Twin>>,
}

impl SharedTwin {
    pub fn new(twin: Twin) -> SharedTwin {
        SharedTwin {
            twin: Arc::new(Mutex::new(twin)),
        }
    }

    /// Sensors that advance this twin by one step per sample.
    pub fn sensors(&self) -> TwinSensors {
        TwinSensors::new(self.clone())
    }

    /// An actuator that sets this twin's power limits.
    pub fn actuator(&self) -> TwinActuator {
        TwinActuator::new(self.clone())
    }

    /// The figures of the run so far.
    pub fn report(&self) -> TwinReport {
        self.lock().report()
    }

    /// A copy of the trace recorded so far, if recording was turned on.
    pub fn trace(&self) -> Option<Trace> {
        self.lock().trace().cloned()
    }

    /// Runs `f` on the twin, for anything the other methods do not cover.
    pub fn with<R>(&self, f: impl FnOnce(&mut Twin) -> R) -> R {
        f(&mut self.lock())
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Twin> {
        self.twin.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
