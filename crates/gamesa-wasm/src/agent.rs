//! One WASM agent: an instance of its module in a store of its own, each call given
//! the module's fuel afresh. A trap, running out of fuel or memory, an error the guest
//! returns, or an answer that is not intents fails the turn; after a trap the instance
//! is not called again (its state may be half-written) until the runtime restarts it.

use gamesa_agent::{
    Agent, AgentError, AgentSpec, Experience, Intent, ModuleSpec, Observation, wire,
};
use wasmtime::{Engine, Store, Trap};

use crate::{
    bindings::{Plugin, PluginPre, exports::gamesa::agent::agent::Spec},
    sandbox::Sandbox,
};

/// The most bytes an `observe` may answer; more is a failure, not decoded.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;
/// The most intents one `observe` may return; more is a failure.
pub const MAX_INTENTS: usize = 4096;

/// An agent whose code is a WebAssembly component.
pub struct WasmAgent {
    name: String,
    store: Store<Sandbox>,
    plugin: Plugin,
    fuel: u64,
    /// Why the instance may no longer be called: it trapped (possibly in `warm`, which
    /// cannot report it; the next turn does).
    broken: Option<String>,
}

impl std::fmt::Debug for WasmAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmAgent")
            .field("name", &self.name)
            .field("fuel", &self.fuel)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl WasmAgent {
    /// Instantiates `pre` for the agent `spec` and calls its `init`.
    pub(crate) fn instantiate(
        engine: &Engine,
        pre: &PluginPre<Sandbox>,
        spec: &AgentSpec,
        module: &ModuleSpec,
    ) -> Result<WasmAgent, AgentError> {
        let refuse = |message: String| AgentError::InvalidParams {
            agent: spec.name.clone(),
            message,
        };
        let mut store = Store::new(engine, Sandbox::new(&spec.name, module.memory_bytes));
        store.limiter(|sandbox| &mut sandbox.limits);
        let fuel = module.fuel;
        store
            .set_fuel(fuel)
            .map_err(|error| refuse(format!("setting fuel: {error}")))?;
        let plugin = pre
            .instantiate(&mut store)
            .map_err(|error| refuse(describe(&error, &store, "instantiating")))?;
        let params = toml::to_string(&spec.params)
            .map_err(|error| refuse(format!("params as TOML: {error}")))?;
        let wit_spec = Spec {
            id: spec.id.0,
            name: spec.name.clone(),
            weight: spec.weight,
            params,
        };
        store
            .set_fuel(fuel)
            .map_err(|error| refuse(format!("setting fuel: {error}")))?;
        match plugin.gamesa_agent_agent().call_init(&mut store, &wit_spec) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(refuse(format!("its init refused: {message}"))),
            Err(error) => return Err(refuse(describe(&error, &store, "init"))),
        }
        Ok(WasmAgent {
            name: spec.name.clone(),
            store,
            plugin,
            fuel,
            broken: None,
        })
    }

    /// Fuel the last call left unspent (for benchmarks and tests).
    pub fn fuel_left(&self) -> u64 {
        self.store.get_fuel().unwrap_or(0)
    }

    /// The fuel each call starts with.
    pub fn fuel(&self) -> u64 {
        self.fuel
    }

    fn refuel(&mut self) -> Result<(), AgentError> {
        self.store
            .set_fuel(self.fuel)
            .map_err(|error| AgentError::Failed(format!("setting fuel: {error}")))
    }

    /// A trap ends the instance's life: this and every later call fail with why.
    fn trapped(&mut self, error: &wasmtime::Error, call: &str) -> AgentError {
        let why = describe(error, &self.store, call);
        self.broken = Some(why.clone());
        AgentError::Failed(why)
    }
}

impl Agent for WasmAgent {
    fn observe(&mut self, observation: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        if let Some(why) = &self.broken {
            return Err(AgentError::Failed(format!("not called again: {why}")));
        }
        self.refuel()?;
        let bytes = wire::encode_observation(observation);
        let answer = match self
            .plugin
            .gamesa_agent_agent()
            .call_observe(&mut self.store, &bytes)
        {
            Ok(Ok(answer)) => answer,
            Ok(Err(message)) => {
                return Err(AgentError::Failed(format!(
                    "observe returned an error: {message}"
                )));
            }
            Err(error) => return Err(self.trapped(&error, "observe")),
        };
        if answer.len() > MAX_ANSWER_BYTES {
            return Err(AgentError::Failed(format!(
                "observe answered {} bytes, over the limit of {MAX_ANSWER_BYTES}",
                answer.len()
            )));
        }
        let intents = wire::decode_intents(&answer)?;
        if intents.len() > MAX_INTENTS {
            return Err(AgentError::Failed(format!(
                "observe answered {} intents, over the limit of {MAX_INTENTS}",
                intents.len()
            )));
        }
        wire::check_intents(&intents, observation.agent, observation.tick)?;
        Ok(intents)
    }

    fn warm(&mut self, past: &[Experience]) {
        if self.broken.is_some() {
            return;
        }
        let bytes = wire::encode_experiences(past);
        let result = self
            .refuel()
            .map_err(|error| error.to_string())
            .and_then(|()| {
                self.plugin
                    .gamesa_agent_agent()
                    .call_warm(&mut self.store, &bytes)
                    .map_err(|error| describe(&error, &self.store, "warm"))
            });
        if let Err(why) = result {
            self.broken = Some(why);
        }
    }
}

/// A failed call in words: what stopped it (fuel, memory, a trap), and the last line the
/// guest printed, which for a Rust guest is its panic message. The wasm backtrace is left
/// out: a failure is a line in the log and the journal.
fn describe(error: &wasmtime::Error, store: &Store<Sandbox>, call: &str) -> String {
    let root = error.root_cause().to_string();
    let stopped = match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => "ran out of fuel".to_owned(),
        _ if root.contains("forcing trap when growing memory") => {
            format!("ran out of memory (its memory limit): {root}")
        }
        Some(trap) => format!("trapped: {trap}"),
        None => format!("failed: {root}"),
    };
    match store.data().output.last_line() {
        Some(line) => format!("{call} {stopped}; it printed: {line}"),
        None => format!("{call} {stopped}"),
    }
}
