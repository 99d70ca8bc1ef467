//! The agent behind the exports, as plain functions that build and test natively:
//! [`agent_spec`] reads the WIT `spec` record, and a [`Slot`] holds the agent the factory
//! built and turns `warm` and `observe` bytes into calls on it.
//!
//! Every failure is a `String` for the WIT `result`'s error, in words: the host reports
//! it as the agent's failure, the way it reports a built-in agent's `AgentError`.

use std::sync::{Mutex, MutexGuard, PoisonError};

use gamesa_agent::{
    Agent, AgentError, AgentSpec, ModuleSpec,
    proto::AgentId,
    wire::{decode_experiences, decode_observation, encode_intents},
};

/// The [`AgentSpec`] a factory gets from the WIT `spec` record: `params` is the TOML text
/// of the agent's `[agents.params]` table, and text that is not a TOML table is an error
/// that says where it went wrong.
pub fn agent_spec(id: u32, name: String, weight: u32, params: &str) -> Result<AgentSpec, String> {
    let params: toml::Table = params
        .parse()
        .map_err(|error| format!("agent `{name}`: params are not a TOML table: {error}"))?;
    Ok(AgentSpec {
        id: AgentId(id),
        name,
        kind: ModuleSpec::KIND.to_owned(),
        weight,
        params,
        // The guest is the module: it has no path to one.
        module: None,
    })
}

/// The one agent of a WASM instance, from `init` on.
///
/// A `static` in the module [`export_agent!`](crate::export_agent) writes; the
/// component model calls an instance's exports one at a time, so the lock is never
/// contended, and it makes the slot `Sync` without `unsafe`.
#[derive(Default)]
pub struct Slot {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    agent: Option<Box<dyn Agent>>,
    /// A `warm` that could not be done (WIT's `warm` returns nothing): the next
    /// `observe` reports it.
    warm_error: Option<String>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Slot")
            .field("built", &state.agent.is_some())
            .field("warm_error", &state.warm_error)
            .finish()
    }
}

impl Slot {
    pub const fn new() -> Slot {
        Slot {
            state: Mutex::new(State {
                agent: None,
                warm_error: None,
            }),
        }
    }

    /// Builds the agent with `factory`, replacing any agent built before. The factory's
    /// error is the error, in its own words (`agent `cores0`: invalid params: …`), and
    /// leaves the slot empty.
    pub fn init<F>(&self, spec: &AgentSpec, factory: F) -> Result<(), String>
    where
        F: FnOnce(&AgentSpec) -> Result<Box<dyn Agent>, AgentError>,
    {
        let mut state = self.lock();
        *state = State::default();
        state.agent = Some(factory(spec).map_err(|error| error.to_string())?);
        Ok(())
    }

    /// Hands the agent its past epochs, `past` being a MessagePack array of
    /// `Experience`. WIT's `warm` has no error to return, so bytes that do not decode, or
    /// a `warm` before `init`, fail the next `observe` instead: the host then restarts
    /// the agent as it does after any failure.
    pub fn warm(&self, past: &[u8]) {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(agent) = state.agent.as_mut() else {
            state.warm_error = Some("warm before init".to_owned());
            return;
        };
        match decode_experiences(past) {
            Ok(past) => agent.warm(&past),
            Err(error) => state.warm_error = Some(format!("warm: {error}")),
        }
    }

    /// One tick: decodes the MessagePack observation, asks the agent, and encodes its
    /// intents. Before `init`, after a failed `warm`, on bytes that are not an
    /// observation, and when the agent fails, the error says which.
    pub fn observe(&self, observation: &[u8]) -> Result<Vec<u8>, String> {
        let mut state = self.lock();
        if let Some(error) = state.warm_error.take() {
            return Err(error);
        }
        let agent = state
            .agent
            .as_mut()
            .ok_or_else(|| "observe before init".to_owned())?;
        let observation = decode_observation(observation).map_err(|error| error.to_string())?;
        let intents = agent
            .observe(&observation.view())
            .map_err(|error| error.to_string())?;
        Ok(encode_intents(&intents))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic inside the agent traps a WASM instance, which is then dropped; natively
        // (in tests) the agent is kept as it was, as the host would see it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use gamesa_agent::{
        Experience, Intent, Observation,
        proto::{Quantity, Resource, Tick},
        testkit::World,
        wire::{decode_intents, encode_experiences, encode_observation},
    };

    use super::*;

    /// Offers `cores` (from params) once per tick, and counts the epochs it was warmed
    /// with in the quantity.
    #[derive(Debug)]
    struct Echo {
        cores: u64,
        warmed: u64,
    }

    impl Agent for Echo {
        fn observe(&mut self, _: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
            if self.cores == 13 {
                return Err(AgentError::Failed("unlucky".into()));
            }
            Ok(vec![Intent::SetCapacity {
                resource: Resource::CpuCores,
                quantity: Quantity(self.cores + self.warmed),
            }])
        }

        fn warm(&mut self, past: &[Experience]) {
            self.warmed += past.len() as u64;
        }
    }

    fn build(spec: &AgentSpec) -> Result<Box<dyn Agent>, AgentError> {
        assert_eq!(spec.kind, "wasm");
        let cores = spec
            .params
            .get("cores")
            .and_then(toml::Value::as_integer)
            .ok_or_else(|| AgentError::InvalidParams {
                agent: spec.name.clone(),
                message: "`cores` is missing".into(),
            })?;
        Ok(Box::new(Echo {
            cores: cores as u64,
            warmed: 0,
        }))
    }

    fn spec(params: &str) -> AgentSpec {
        agent_spec(3, "cores0".into(), 2, params).unwrap()
    }

    fn observation() -> Vec<u8> {
        encode_observation(&World::default().observation(AgentId(3)))
    }

    fn offered(bytes: &[u8]) -> u64 {
        match decode_intents(bytes).unwrap().as_slice() {
            [Intent::SetCapacity { quantity, .. }] => quantity.0,
            other => panic!("{other:?}"),
        }
    }

    fn experience() -> Experience {
        Experience {
            first_tick: Tick(0),
            ticks: 10,
            component: "cpu".into(),
            utilization_permille: 500,
            power_mw: None,
            temp_mc: None,
            limit_mw: None,
            progress_micro: None,
            bought_mw: 0,
            mean_price: None,
        }
    }

    #[test]
    fn the_spec_carries_config_with_kind_wasm() {
        let spec = agent_spec(3, "cores0".into(), 2, "cores = 2\n[nested]\nx = 1").unwrap();
        assert_eq!(spec.id, AgentId(3));
        assert_eq!(spec.name, "cores0");
        assert_eq!(spec.kind, "wasm");
        assert_eq!(spec.weight, 2);
        assert_eq!(spec.params["cores"].as_integer(), Some(2));
        assert!(
            agent_spec(3, "cores0".into(), 2, "")
                .unwrap()
                .params
                .is_empty()
        );
    }

    #[test]
    fn params_that_are_not_toml_are_an_error_that_says_so() {
        let error = agent_spec(3, "cores0".into(), 2, "cores = = 2").unwrap_err();
        assert!(
            error.starts_with("agent `cores0`: params are not a TOML table"),
            "{error}"
        );
        assert!(error.contains("line 1"), "{error}");
    }

    #[test]
    fn observe_runs_the_agent_the_factory_built() {
        let slot = Slot::new();
        slot.init(&spec("cores = 2"), build).unwrap();
        assert_eq!(offered(&slot.observe(&observation()).unwrap()), 2);
    }

    #[test]
    fn observe_before_init_or_after_a_refused_init_is_an_error() {
        let slot = Slot::new();
        assert_eq!(
            slot.observe(&observation()).unwrap_err(),
            "observe before init"
        );
        let error = slot.init(&spec(""), build).unwrap_err();
        assert_eq!(error, "agent `cores0`: invalid params: `cores` is missing");
        assert_eq!(
            slot.observe(&observation()).unwrap_err(),
            "observe before init"
        );
    }

    #[test]
    fn init_again_builds_a_fresh_agent() {
        let slot = Slot::new();
        slot.init(&spec("cores = 2"), build).unwrap();
        slot.warm(&encode_experiences(&[experience()]));
        assert_eq!(offered(&slot.observe(&observation()).unwrap()), 3);
        slot.init(&spec("cores = 5"), build).unwrap();
        assert_eq!(offered(&slot.observe(&observation()).unwrap()), 5);
    }

    #[test]
    fn warm_hands_the_agent_its_past() {
        let slot = Slot::new();
        slot.init(&spec("cores = 2"), build).unwrap();
        slot.warm(&encode_experiences(&[experience(), experience()]));
        assert_eq!(offered(&slot.observe(&observation()).unwrap()), 4);
    }

    #[test]
    fn a_failed_warm_fails_the_next_observe_only() {
        let slot = Slot::new();
        slot.warm(&encode_experiences(&[]));
        assert_eq!(
            slot.observe(&observation()).unwrap_err(),
            "warm before init"
        );

        slot.init(&spec("cores = 2"), build).unwrap();
        slot.warm(b"\xc1");
        let error = slot.observe(&observation()).unwrap_err();
        assert!(
            error.starts_with("warm: agent failed: undecodable experiences"),
            "{error}"
        );
        assert_eq!(offered(&slot.observe(&observation()).unwrap()), 2);
    }

    #[test]
    fn bad_bytes_and_the_agents_failure_are_errors_in_words() {
        let slot = Slot::new();
        slot.init(&spec("cores = 2"), build).unwrap();
        let error = slot.observe(b"not an observation").unwrap_err();
        assert!(error.contains("undecodable observation"), "{error}");

        slot.init(&spec("cores = 13"), build).unwrap();
        assert_eq!(
            slot.observe(&observation()).unwrap_err(),
            "agent failed: unlucky"
        );
    }
}
