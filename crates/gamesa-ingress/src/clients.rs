//! The clients config allows: name, participant id, resolved token and effects, looked
//! up by name at `hello`.

use std::{collections::BTreeMap, sync::Arc};

use gamesa_proto::{AgentId, Effect};

use gamesa_config::{Config, ingress::resolve_token};

/// One client that may connect.
#[derive(Clone)]
pub struct ClientEntry {
    pub name: String,
    /// Its participant id: after every agent's, in config order.
    pub agent: AgentId,
    pub effects: Vec<Effect>,
    pub weight: u32,
    token: String,
}

impl std::fmt::Debug for ClientEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs.
        f.debug_struct("ClientEntry")
            .field("name", &self.name)
            .field("agent", &self.agent)
            .field("effects", &self.effects)
            .finish_non_exhaustive()
    }
}

impl ClientEntry {
    /// Whether `other` (the same client in another config) has this entry's token.
    pub fn same_token(&self, other: &ClientEntry) -> bool {
        self.token_matches(&other.token)
    }

    /// Compares in time independent of where the first difference lies.
    pub fn token_matches(&self, presented: &str) -> bool {
        let (expected, presented) = (self.token.as_bytes(), presented.as_bytes());
        let mut difference = expected.len() ^ presented.len();
        for (index, byte) in expected.iter().enumerate() {
            let other = presented.get(index).copied().unwrap_or(!byte);
            difference |= usize::from(byte ^ other);
        }
        difference == 0
    }
}

/// Every configured client, by name.
#[derive(Debug, Clone, Default)]
pub struct ClientDirectory {
    by_name: BTreeMap<String, Arc<ClientEntry>>,
}

impl ClientDirectory {
    /// Resolves each client's token (`token`, or the variable `token_env` names, read
    /// through `env`); the error names the client and the variable.
    pub fn from_config(
        config: &Config,
        env: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Result<ClientDirectory, String> {
        let mut by_name = BTreeMap::new();
        for (agent, client) in gamesa_config::assemble::client_ids(config) {
            let token = resolve_token(client, env)?;
            by_name.insert(
                client.name.clone(),
                Arc::new(ClientEntry {
                    name: client.name.clone(),
                    agent,
                    effects: client.effects.clone(),
                    weight: client.weight,
                    token,
                }),
            );
        }
        Ok(ClientDirectory { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<ClientEntry>> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ClientEntry>> {
        self.by_name.values()
    }

    /// The client whose token is `presented` (an HTTP bearer token), comparing with
    /// every client in constant time each; `None` when no client, or more than one
    /// (a token shared through one `token_env`), has it: a bearer token must name one.
    pub fn by_token(&self, presented: &str) -> Option<&Arc<ClientEntry>> {
        let mut found = None;
        let mut matches = 0;
        for client in self.by_name.values() {
            if client.token_matches(presented) {
                found = Some(client);
                matches += 1;
            }
        }
        found.filter(|_| matches == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_must_match_exactly() {
        let entry = ClientEntry {
            name: "game".into(),
            agent: AgentId(6),
            effects: Vec::new(),
            weight: 1,
            token: "correct-horse".into(),
        };
        assert!(entry.token_matches("correct-horse"));
        for wrong in ["", "correct-hors", "correct-horse!", "Correct-horse"] {
            assert!(!entry.token_matches(wrong), "{wrong}");
        }
        assert!(!format!("{entry:?}").contains("horse"));
    }
}
