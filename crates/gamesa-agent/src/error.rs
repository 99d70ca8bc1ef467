//! The error an agent, or its factory, reports to the runtime.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error, serde::Serialize)]
pub enum AgentError {
    /// The agent's `params` table is wrong; the message names the offending key.
    #[error("agent `{agent}`: invalid params: {message}")]
    InvalidParams { agent: String, message: String },
    /// The code an agent loads (a WASM module) cannot run: unreadable, not a component,
    /// or not exporting what an agent must.
    #[error("agent `{agent}`: module {message}")]
    InvalidModule { agent: String, message: String },
    /// No factory is registered under this kind.
    #[error("unknown agent kind `{kind}` (registered: {known})")]
    UnknownKind { kind: String, known: String },
    /// A second factory was registered under an existing kind.
    #[error("agent kind `{0}` is already registered")]
    DuplicateKind(String),
    /// The agent failed this tick; it will be restarted.
    #[error("agent failed: {0}")]
    Failed(String),
}
