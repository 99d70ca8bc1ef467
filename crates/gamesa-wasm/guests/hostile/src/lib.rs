//! A deliberately malicious WASM agent, for `gamesa-wasm`'s tests of the sandbox: it
//! exports `wit/agent.wit` through wit-bindgen directly, not through the guest SDK, so
//! it can answer bytes that are not intents.
//!
//! `init` reads two params: `behaviour` (a string, required) and `from_tick` (an
//! integer, default 0). Before tick `from_tick` `observe` answers no intents (the
//! MessagePack empty array, `[0x90]`); from that tick on it misbehaves as `behaviour`
//! says ([`Behaviour`]). Any other param, or an unknown behaviour, is an `init` error.

mod bindings;
pub mod hostile;

// wit-bindgen's `export!` expands here, into `unsafe` ABI glue (raw pointers into
// linear memory) that this crate does not write by hand.
#[allow(unsafe_code)]
#[cfg(target_arch = "wasm32")]
mod exports {
    //! The component's exports: one [`Hostile`] per instance, behind a lock so the static
    //! is `Sync` without `unsafe`.

    use std::sync::{Mutex, PoisonError};

    use crate::{
        bindings::{self, exports::gamesa::agent::agent},
        hostile::Hostile,
    };

    static HOSTILE: Mutex<Option<Hostile>> = Mutex::new(None);

    struct Component;

    impl agent::Guest for Component {
        fn init(spec: agent::Spec) -> Result<(), String> {
            let hostile = Hostile::from_params(&spec.params)?;
            *HOSTILE.lock().unwrap_or_else(PoisonError::into_inner) = Some(hostile);
            Ok(())
        }

        fn warm(_past: Vec<u8>) {}

        fn observe(observation: Vec<u8>) -> Result<Vec<u8>, String> {
            let guard = HOSTILE.lock().unwrap_or_else(PoisonError::into_inner);
            let hostile = guard
                .as_ref()
                .ok_or_else(|| "observe before init".to_owned())?;
            hostile.observe(&observation)
        }
    }

    bindings::export!(Component with_types_in bindings);
}
