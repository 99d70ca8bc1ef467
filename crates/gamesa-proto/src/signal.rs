//! Signals: ranked hints about what matters now ("thermal critical", "game started").

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::{AgentId, CorrelationId, ProtoError};

/// The domain a signal belongs to. The default ranking is declaration order:
/// safety first, background last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    Safety,
    Thermal,
    Power,
    Performance,
    Efficiency,
    Background,
}

impl Domain {
    pub const ALL: [Domain; 6] = [
        Domain::Safety,
        Domain::Thermal,
        Domain::Power,
        Domain::Performance,
        Domain::Efficiency,
        Domain::Background,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Safety => "safety",
            Domain::Thermal => "thermal",
            Domain::Power => "power",
            Domain::Performance => "performance",
            Domain::Efficiency => "efficiency",
            Domain::Background => "background",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Domain {
    type Err = ProtoError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Domain::ALL
            .into_iter()
            .find(|domain| domain.as_str() == name)
            .ok_or_else(|| ProtoError::UnknownDomain {
                name: name.to_owned(),
                expected: "safety, thermal, power, performance, efficiency, background",
            })
    }
}

/// How strongly a signal is meant, stored in permille so that ranking is exact.
/// On the wire it is a number in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Strength(u16);

impl Strength {
    pub const MAX: Strength = Strength(1000);

    pub fn from_permille(permille: u16) -> Result<Strength, ProtoError> {
        if permille <= 1000 {
            Ok(Strength(permille))
        } else {
            Err(ProtoError::StrengthOutOfRange(format!("{permille}‰")))
        }
    }

    pub fn permille(self) -> u16 {
        self.0
    }

    pub fn as_unit(self) -> f64 {
        f64::from(self.0) / 1000.0
    }
}

impl TryFrom<f64> for Strength {
    type Error = ProtoError;

    fn try_from(unit: f64) -> Result<Self, Self::Error> {
        if unit.is_finite() && (0.0..=1.0).contains(&unit) {
            // In range by the check above, so the cast cannot truncate.
            Ok(Strength((unit * 1000.0).round() as u16))
        } else {
            Err(ProtoError::StrengthOutOfRange(unit.to_string()))
        }
    }
}

impl From<Strength> for f64 {
    fn from(strength: Strength) -> f64 {
        strength.as_unit()
    }
}

/// What a signal says, as a short lowercase name such as `thermal_critical`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SignalKind(String);

impl SignalKind {
    pub fn new(name: impl Into<String>) -> Result<SignalKind, ProtoError> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        if valid {
            Ok(SignalKind(name))
        } else {
            Err(ProtoError::InvalidSignalKind(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SignalKind {
    type Error = ProtoError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        SignalKind::new(name)
    }
}

impl From<SignalKind> for String {
    fn from(kind: SignalKind) -> String {
        kind.0
    }
}

impl fmt::Display for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A ranked hint raised by an agent or injected by a client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signal {
    pub kind: SignalKind,
    pub domain: Domain,
    pub strength: Strength,
    pub source: AgentId,
    /// How many ticks the signal stays live after it is enqueued (at least 1).
    pub ttl_ticks: u32,
    /// Set when the signal was injected by a client, so the decision it causes can be
    /// traced back to the request.
    #[serde(default)]
    pub correlation: Option<CorrelationId>,
}

impl Signal {
    pub fn validate(&self) -> Result<(), ProtoError> {
        if self.ttl_ticks == 0 {
            return Err(ProtoError::ZeroTtl);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength_accepts_the_unit_interval_only() {
        assert_eq!(Strength::try_from(0.9).unwrap().permille(), 900);
        assert!(Strength::try_from(1.5).is_err());
        assert!(Strength::try_from(f64::NAN).is_err());
        assert!(Strength::try_from(-0.1).is_err());
    }

    #[test]
    fn signal_kind_rejects_bad_names() {
        assert!(SignalKind::new("game_started").is_ok());
        assert_eq!(
            SignalKind::new("Game Started"),
            Err(ProtoError::InvalidSignalKind("Game Started".into()))
        );
        assert!(SignalKind::new("").is_err());
    }

    #[test]
    fn domains_are_ranked_safety_first() {
        assert!(Domain::Safety < Domain::Thermal);
        assert!(Domain::Performance < Domain::Background);
        assert_eq!("power".parse::<Domain>(), Ok(Domain::Power));
        assert!("speed".parse::<Domain>().is_err());
    }

    #[test]
    fn signal_strength_is_a_float_on_the_wire() {
        let signal = Signal {
            kind: SignalKind::new("game_started").unwrap(),
            domain: Domain::Performance,
            strength: Strength::try_from(0.9).unwrap(),
            source: AgentId(7),
            ttl_ticks: 10,
            correlation: None,
        };
        let json = serde_json::to_value(&signal).unwrap();
        assert_eq!(json["strength"], 0.9);
        let bad = r#"{"kind":"x","domain":"safety","strength":3.0,"source":1,"ttl_ticks":1}"#;
        assert!(serde_json::from_str::<Signal>(bad).is_err());
    }
}
