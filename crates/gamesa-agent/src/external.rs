//! Out-of-process agents (`[[agents]] kind = "external"`): what stands for one inside
//! the engine. Such an agent lives in another process, in any language, and answers its
//! turns over the ingress protocol (`docs/protocol.md`, "External agents"). The
//! daemon's shell asks that process and never this stand-in; a replay takes the
//! journaled answers instead. Where there is no process to ask (`gamesa sim`), the
//! stand-in fails every turn, and the agent is restarted and isolated like any agent
//! that cannot answer.

use crate::{Agent, AgentError, AgentRegistry, AgentSpec, Intent, Observation};

/// The agent kind of an out-of-process agent.
pub const EXTERNAL_KIND: &str = "external";

/// Registers [`EXTERNAL_KIND`]. Its `params` must be empty: what the process needs it
/// reads itself.
pub fn register(registry: &mut AgentRegistry) -> Result<(), AgentError> {
    registry.register(EXTERNAL_KIND, |spec: &AgentSpec| {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NoParams {}
        spec.params::<NoParams>()?;
        Ok(Box::new(Unreachable {
            name: spec.name.clone(),
        }) as Box<dyn Agent>)
    })
}

/// An external agent with no process behind it.
struct Unreachable {
    name: String,
}

impl Agent for Unreachable {
    fn observe(&mut self, _: &Observation<'_>) -> Result<Vec<Intent>, AgentError> {
        Err(AgentError::Failed(format!(
            "external agent `{}` has no process here: its turns are answered by its \
             client over a running daemon's ingress protocol",
            self.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use gamesa_proto::AgentId;

    use super::*;

    fn spec(params: &str) -> AgentSpec {
        AgentSpec {
            id: AgentId(1),
            name: "py".into(),
            kind: EXTERNAL_KIND.into(),
            weight: 1,
            params: params.parse().unwrap(),
            module: None,
        }
    }

    #[test]
    fn params_are_refused_and_the_stand_in_never_answers() {
        let mut registry = AgentRegistry::new();
        register(&mut registry).unwrap();
        let factory = registry.factory(EXTERNAL_KIND).unwrap();
        let error = factory(&spec("price = 3")).err().unwrap();
        assert!(error.to_string().contains("price"), "{error}");
        let mut agent = factory(&spec("")).unwrap();
        let world = crate::testkit::World::default();
        let error = agent.observe(&world.observation(AgentId(1))).unwrap_err();
        assert!(error.to_string().contains("no process here"), "{error}");
    }
}
