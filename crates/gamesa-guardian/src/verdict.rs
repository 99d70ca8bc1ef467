//! The guardian's answer to a fill or an actuation: allow, clamp or deny, always with a
//! reason that can go on the wire and into a trace.

use std::fmt;

use gamesa_proto::{Actuation, AgentId, Credits, Effect};
use serde::{Deserialize, Serialize};

use crate::{ContractFailure, GateReason, LedgerError};

/// Why the guardian decided as it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A fill passed every check and was settled.
    Settled {
        paid: Credits,
        refunded: Credits,
        /// The smallest margin among the contracts checked (`None` when none applied).
        tightest_margin: Option<f64>,
    },
    /// An actuation passed every check.
    Passed { tightest_margin: Option<f64> },
    /// The request itself is malformed (an actuation that fails validation).
    Invalid { detail: String },
    /// The principal lacks the effect.
    EffectDenied { principal: AgentId, effect: Effect },
    /// A contract clause did not hold (or could not be decided).
    Contract { failure: ContractFailure },
    /// Allowed although `failure` still does not hold: the change leaves no clause worse
    /// than before it and breaks none that held, so it moves toward compliance.
    Improves { failure: ContractFailure },
    /// The ledger refused the settlement.
    Ledger { error: LedgerError },
    /// The action gate clamped or denied.
    Gate { reason: GateReason },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let margin = |f: &mut fmt::Formatter<'_>, tightest: &Option<f64>| match tightest {
            Some(margin) => write!(f, " (tightest margin {margin})"),
            None => Ok(()),
        };
        match self {
            Reason::Settled {
                paid,
                refunded,
                tightest_margin,
            } => {
                write!(f, "settled: paid {paid}, refunded {refunded}")?;
                margin(f, tightest_margin)
            }
            Reason::Passed { tightest_margin } => {
                f.write_str("passed every check")?;
                margin(f, tightest_margin)
            }
            Reason::Invalid { detail } => write!(f, "invalid request: {detail}"),
            Reason::EffectDenied { principal, effect } => {
                write!(f, "{principal} lacks the effect `{effect}`")
            }
            Reason::Contract { failure } => failure.fmt(f),
            Reason::Improves { failure } => {
                write!(f, "allowed as it moves toward compliance: {failure}")
            }
            Reason::Ledger { error } => write!(f, "ledger: {error}"),
            Reason::Gate { reason } => write!(f, "gate: {reason}"),
        }
    }
}

/// Allow, clamp (actuations only: apply `to` instead of what was asked) or deny.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Verdict {
    Allow { reason: Reason },
    Clamp { to: Actuation, reason: Reason },
    Deny { reason: Reason },
}

impl Verdict {
    pub fn reason(&self) -> &Reason {
        match self {
            Verdict::Allow { reason }
            | Verdict::Clamp { reason, .. }
            | Verdict::Deny { reason } => reason,
        }
    }

    /// Whether something is to be applied (allowed as asked, or clamped).
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Verdict::Deny { .. })
    }

    /// What to apply for a request: the request itself, the clamped value, or nothing.
    pub fn applied<'a>(&'a self, requested: &'a Actuation) -> Option<&'a Actuation> {
        match self {
            Verdict::Allow { .. } => Some(requested),
            Verdict::Clamp { to, .. } => Some(to),
            Verdict::Deny { .. } => None,
        }
    }

    /// `allow`, `clamp` or `deny`, for trace attributes.
    pub fn decision(&self) -> &'static str {
        match self {
            Verdict::Allow { .. } => "allow",
            Verdict::Clamp { .. } => "clamp",
            Verdict::Deny { .. } => "deny",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Clamp { to, reason } => write!(f, "clamp to {to}: {reason}"),
            _ => write!(f, "{}: {}", self.decision(), self.reason()),
        }
    }
}
