//! The agent registry: kind name → factory, so config chooses and parametrises plugins.

use std::{collections::BTreeMap, fmt, sync::Arc};

use gamesa_proto::AgentId;
use serde::de::DeserializeOwned;

use crate::{Agent, AgentError};

/// What config says about one agent: the factory builds the agent from this.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    pub id: AgentId,
    /// The name in config (`gpu0`, `cpu`), unique per runtime.
    pub name: String,
    pub kind: String,
    /// The agent's share of the minted allowance, relative to the others.
    pub weight: u32,
    /// The agent's own `params` table, interpreted by its factory.
    pub params: toml::Table,
    /// The code it runs, for kinds that load it (`wasm`); `None` for compiled-in kinds.
    pub module: Option<ModuleSpec>,
}

/// A WebAssembly module an agent runs, and the bounds on each of its calls.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleSpec {
    /// The component's file (absolute once config is loaded).
    pub path: std::path::PathBuf,
    /// Fuel for one call (roughly one unit per WebAssembly instruction); running out is
    /// a failure.
    pub fuel: u64,
    /// The most linear memory the instance may grow to, in bytes.
    pub memory_bytes: u64,
}

impl ModuleSpec {
    /// The agent kind that runs a module: `[[agents]] kind = "wasm"`.
    pub const KIND: &'static str = "wasm";
}

impl AgentSpec {
    /// Deserializes `params` into the agent's own settings type. Declare that type with
    /// `#[serde(deny_unknown_fields)]` so a typo in config is an error that names it.
    ///
    /// Every error names the key it is about: a wrong-typed or out-of-range value is
    /// reported with its dotted path (`` `t_max_mc.gpu0`: invalid type: … ``), since the
    /// deserializer alone says only what it expected.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, AgentError> {
        serde_path_to_error::deserialize(toml::Value::Table(self.params.clone())).map_err(
            |err: serde_path_to_error::Error<toml::de::Error>| {
                let path = err.path().to_string();
                let message = err.inner().message();
                let named = path == "." || message.contains(&format!("`{path}`"));
                AgentError::InvalidParams {
                    agent: self.name.clone(),
                    message: if named {
                        message.to_owned()
                    } else {
                        format!("`{path}`: {message}")
                    },
                }
            },
        )
    }
}

/// Builds a fresh agent from its spec. Called again on every restart.
pub type AgentFactory = Arc<dyn Fn(&AgentSpec) -> Result<Box<dyn Agent>, AgentError> + Send + Sync>;

/// The component an agent of a kind buys power for, read from its spec the way its
/// factory reads it (defaults included): the guardian binds the agent's power leases to
/// that component's limit. `None`: the agent powers nothing.
pub type PowersFn = Arc<dyn Fn(&AgentSpec) -> Result<Option<String>, AgentError> + Send + Sync>;

/// Kind name → factory, and what agents of the kind power.
#[derive(Clone, Default)]
pub struct AgentRegistry {
    factories: BTreeMap<String, AgentFactory>,
    powers: BTreeMap<String, PowersFn>,
}

impl fmt::Debug for AgentRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentRegistry")
            .field("kinds", &self.factories.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AgentRegistry {
    pub fn new() -> AgentRegistry {
        AgentRegistry::default()
    }

    /// Registers a factory under `kind`; a kind can be registered once.
    pub fn register<F>(&mut self, kind: impl Into<String>, factory: F) -> Result<(), AgentError>
    where
        F: Fn(&AgentSpec) -> Result<Box<dyn Agent>, AgentError> + Send + Sync + 'static,
    {
        let kind = kind.into();
        if self.factories.contains_key(&kind) {
            return Err(AgentError::DuplicateKind(kind));
        }
        self.factories.insert(kind, Arc::new(factory));
        Ok(())
    }

    /// Registers a factory under `kind` whose agents buy power for one component:
    /// `powers` names it, from the spec, as the factory would (defaults included).
    pub fn register_powering<F, P>(
        &mut self,
        kind: impl Into<String>,
        factory: F,
        powers: P,
    ) -> Result<(), AgentError>
    where
        F: Fn(&AgentSpec) -> Result<Box<dyn Agent>, AgentError> + Send + Sync + 'static,
        P: Fn(&AgentSpec) -> Result<Option<String>, AgentError> + Send + Sync + 'static,
    {
        let kind = kind.into();
        self.register(kind.clone(), factory)?;
        self.powers.insert(kind, Arc::new(powers));
        Ok(())
    }

    /// The component the agent `spec` describes buys power for; `None` for kinds that
    /// power nothing. An error is a bad `params` table, as the factory would report it.
    pub fn powered_component(&self, spec: &AgentSpec) -> Result<Option<String>, AgentError> {
        self.factory(&spec.kind)?;
        match self.powers.get(&spec.kind) {
            Some(powers) => powers(spec),
            None => Ok(None),
        }
    }

    pub fn contains(&self, kind: &str) -> bool {
        self.factories.contains_key(kind)
    }

    /// The registered kinds, in name order.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    pub fn factory(&self, kind: &str) -> Result<AgentFactory, AgentError> {
        self.factories
            .get(kind)
            .cloned()
            .ok_or_else(|| AgentError::UnknownKind {
                kind: kind.to_owned(),
                known: self.kinds().collect::<Vec<_>>().join(", "),
            })
    }

    /// Builds the agent `spec` describes.
    pub fn create(&self, spec: &AgentSpec) -> Result<Box<dyn Agent>, AgentError> {
        (self.factory(&spec.kind)?)(spec)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::{Intent, Observation};

    struct Quiet;

    impl Agent for Quiet {
        fn observe(&mut self, _: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
            Ok(Vec::new())
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct QuietParams {
        level: u32,
    }

    fn spec(kind: &str, params: &str) -> AgentSpec {
        AgentSpec {
            id: AgentId(1),
            name: "quiet0".into(),
            kind: kind.into(),
            weight: 1,
            params: params.parse().unwrap(),
            module: None,
        }
    }

    #[test]
    fn registered_kinds_are_created_by_name() {
        let mut registry = AgentRegistry::new();
        registry
            .register("quiet", |spec| {
                spec.params::<QuietParams>()?;
                Ok(Box::new(Quiet) as Box<dyn Agent>)
            })
            .unwrap();
        assert!(registry.create(&spec("quiet", "level = 3")).is_ok());
        assert_eq!(
            registry.register("quiet", |_| Ok(Box::new(Quiet) as Box<dyn Agent>)),
            Err(AgentError::DuplicateKind("quiet".into()))
        );
    }

    #[test]
    fn a_powering_kind_names_its_component_and_others_power_nothing() {
        let mut registry = AgentRegistry::new();
        registry
            .register_powering(
                "heater",
                |_| Ok(Box::new(Quiet) as Box<dyn Agent>),
                |spec| Ok(Some(format!("zone{}", spec.params::<QuietParams>()?.level))),
            )
            .unwrap();
        registry
            .register("quiet", |_| Ok(Box::new(Quiet) as Box<dyn Agent>))
            .unwrap();
        assert_eq!(
            registry.powered_component(&spec("heater", "level = 3")),
            Ok(Some("zone3".into()))
        );
        assert_eq!(registry.powered_component(&spec("quiet", "")), Ok(None));
        assert!(
            registry
                .powered_component(&spec("heater", "volume = 3"))
                .is_err()
        );
        assert!(matches!(
            registry.powered_component(&spec("loud", "")),
            Err(AgentError::UnknownKind { .. })
        ));
    }

    #[test]
    fn unknown_kind_lists_the_known_ones() {
        let mut registry = AgentRegistry::new();
        registry
            .register("quiet", |_| Ok(Box::new(Quiet) as Box<dyn Agent>))
            .unwrap();
        let err = registry.create(&spec("loud", "")).err().unwrap();
        assert_eq!(
            err,
            AgentError::UnknownKind {
                kind: "loud".into(),
                known: "quiet".into()
            }
        );
    }

    #[test]
    fn bad_params_name_the_key() {
        let mut registry = AgentRegistry::new();
        registry
            .register("quiet", |spec| {
                spec.params::<QuietParams>()?;
                Ok(Box::new(Quiet) as Box<dyn Agent>)
            })
            .unwrap();
        let err = registry.create(&spec("quiet", "levle = 3")).err().unwrap();
        let AgentError::InvalidParams { agent, message } = err else {
            panic!("wrong error")
        };
        assert_eq!(agent, "quiet0");
        assert!(message.contains("levle"), "{message}");
    }

    #[test]
    fn a_wrong_typed_value_names_its_key() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        #[allow(dead_code)]
        struct StepParams {
            step_mw: u64,
            t_max_mc: BTreeMap<String, i32>,
        }

        impl Default for StepParams {
            fn default() -> Self {
                StepParams {
                    step_mw: 1_000,
                    t_max_mc: BTreeMap::new(),
                }
            }
        }

        for (params, key) in [
            ("step_mw = \"x\"", "`step_mw`"),
            ("step_mw = -5", "`step_mw`"),
            ("t_max_mc = { gpu0 = 1.5 }", "`t_max_mc.gpu0`"),
        ] {
            let err = spec("quiet", params).params::<StepParams>().err().unwrap();
            let AgentError::InvalidParams { agent, message } = err else {
                panic!("wrong error for {params}")
            };
            assert_eq!(agent, "quiet0");
            assert!(message.contains(key), "{params}: {message}");
        }
        let ok: StepParams = spec("quiet", "step_mw = 5").params().unwrap();
        assert_eq!(ok.step_mw, 5);
    }
}
