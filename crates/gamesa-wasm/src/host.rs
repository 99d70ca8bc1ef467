//! The WASM host: one wasmtime engine for the daemon, each module compiled once per
//! digest (a restart or a second agent on the same module only instantiates), and the
//! `wasm` kind in the agent registry.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use gamesa_agent::{Agent, AgentError, AgentRegistry, AgentSpec, ModuleSpec};
use wasmtime::{
    Config, Engine,
    component::{Component, Linker},
};

use crate::{WasmAgent, bindings::PluginPre, sandbox::Sandbox};

/// Each module compiled so far, by path: the digest of the bytes compiled, and the
/// component ready to instantiate. A module rebuilt in place is compiled again and
/// replaces its entry.
type Compiled = BTreeMap<PathBuf, (u64, PluginPre<Sandbox>)>;

/// The engine and the modules compiled so far. Cloning shares both.
#[derive(Clone)]
pub struct WasmHost {
    engine: Engine,
    linker: Arc<Linker<Sandbox>>,
    compiled: Arc<Mutex<Compiled>>,
}

impl std::fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let compiled = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("WasmHost")
            .field("compiled", &compiled.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl WasmHost {
    /// An engine that meters fuel and computes the same results on every machine
    /// (canonical NaNs, deterministic relaxed SIMD), with WASI linked as the sandbox
    /// allows it.
    pub fn new() -> Result<WasmHost, AgentError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            .max_wasm_stack(512 * 1024);
        let engine = Engine::new(&config)
            .map_err(|error| AgentError::Failed(format!("starting wasmtime: {error}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|error| AgentError::Failed(format!("linking WASI: {error}")))?;
        Ok(WasmHost {
            engine,
            linker: Arc::new(linker),
            compiled: Arc::default(),
        })
    }

    /// Builds the agent `spec` describes: compiles its module unless these bytes were
    /// compiled before, instantiates it and calls its `init`.
    pub fn create(&self, spec: &AgentSpec) -> Result<WasmAgent, AgentError> {
        let module = spec
            .module
            .as_ref()
            .ok_or_else(|| AgentError::InvalidParams {
                agent: spec.name.clone(),
                message: format!("kind = \"{}\" needs a `module`", ModuleSpec::KIND),
            })?;
        let pre = self.compiled(&spec.name, &module.path)?;
        WasmAgent::instantiate(&self.engine, &pre, spec, module)
    }

    fn compiled(&self, agent: &str, path: &Path) -> Result<PluginPre<Sandbox>, AgentError> {
        let refuse = |message: String| AgentError::InvalidModule {
            agent: agent.to_owned(),
            message: format!("{}: {message}", path.display()),
        };
        let bytes = std::fs::read(path).map_err(|error| refuse(format!("cannot read: {error}")))?;
        let digest = xxhash_rust::xxh3::xxh3_64(&bytes);
        let mut compiled = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((known, pre)) = compiled.get(path)
            && *known == digest
        {
            return Ok(pre.clone());
        }
        let component = Component::new(&self.engine, &bytes)
            .map_err(|error| refuse(format!("not a WebAssembly component: {error:#}")))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(PluginPre::new)
            .map_err(|error| {
                refuse(format!(
                    "does not export gamesa:agent/agent@0.1.0, or imports more than WASI: \
                     {error:#}"
                ))
            })?;
        compiled.insert(path.to_owned(), (digest, pre.clone()));
        Ok(pre)
    }
}

/// Registers the `wasm` kind: each agent of it runs the module its spec names, on one
/// engine shared by all of them.
pub fn register(registry: &mut AgentRegistry) -> Result<(), AgentError> {
    let host = WasmHost::new()?;
    registry.register(ModuleSpec::KIND, move |spec: &AgentSpec| {
        host.create(spec)
            .map(|agent| Box::new(agent) as Box<dyn Agent>)
    })
}
