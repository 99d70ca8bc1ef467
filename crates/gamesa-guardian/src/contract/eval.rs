//! Evaluation of a typed condition against an [`Env`]: whether it holds, and by how
//! much (the margin), or which value was missing.
//!
//! # Invariants
//! - a margin is always finite; a non-finite result is reported as undefined
//! - a missing value is reported as missing, never read as zero
//! - for a comparison, the margin is positive when it holds with room to spare and
//!   negative when it is violated: `a < b` and `a <= b` give `b - a`, `a > b` and
//!   `a >= b` give `a - b`, `a == b` gives `-|a - b|`, `a != b` gives `|a - b|`;
//!   `and` takes the smallest margin, `or` the largest, `not` negates

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{
    Env,
    expr::{Arithmetic, Comparison, Cond, Fold, Num},
};

/// Why a clause could not be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault<'a> {
    /// A variable, or one member of a list (`item`), has no value in the env.
    Missing {
        name: &'a str,
        item: Option<&'a str>,
    },
    /// Division by zero, an empty `max`/`min`, or a result too large to be finite.
    Undefined(&'static str),
}

/// A clause's result when it could be decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Truth {
    pub holds: bool,
    pub margin: f64,
}

/// What one top-level clause of a contract came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ClauseOutcome {
    /// The clause holds with `margin` to spare (0 means exactly at the limit).
    Holds { margin: f64 },
    /// The clause is violated; `margin` is how far it is on the wrong side (≤ 0).
    Violated { margin: f64 },
    /// A value the clause needs is not available this time (for example a sensor that
    /// could not be read). `variable` is `name` or `list[member]`.
    Missing { variable: String },
    /// The clause has no value: division by zero, `max` of an empty list, overflow.
    Undefined { detail: String },
}

impl ClauseOutcome {
    pub fn holds(&self) -> bool {
        matches!(self, ClauseOutcome::Holds { .. })
    }

    pub fn margin(&self) -> Option<f64> {
        match self {
            ClauseOutcome::Holds { margin } | ClauseOutcome::Violated { margin } => Some(*margin),
            _ => None,
        }
    }

    pub(crate) fn from_result(result: Result<Truth, Fault<'_>>) -> ClauseOutcome {
        match result {
            Ok(Truth {
                holds: true,
                margin,
            }) => ClauseOutcome::Holds { margin },
            Ok(Truth {
                holds: false,
                margin,
            }) => ClauseOutcome::Violated { margin },
            Err(Fault::Missing { name, item: None }) => ClauseOutcome::Missing {
                variable: name.to_owned(),
            },
            Err(Fault::Missing {
                name,
                item: Some(item),
            }) => ClauseOutcome::Missing {
                variable: format!("{name}[{item}]"),
            },
            Err(Fault::Undefined(detail)) => ClauseOutcome::Undefined {
                detail: detail.to_owned(),
            },
        }
    }
}

impl fmt::Display for ClauseOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClauseOutcome::Holds { margin } => write!(f, "holds with margin {margin}"),
            ClauseOutcome::Violated { margin } => {
                write!(f, "violated by {} (margin {margin})", -margin)
            }
            ClauseOutcome::Missing { variable } => write!(f, "no value for `{variable}`"),
            ClauseOutcome::Undefined { detail } => write!(f, "undefined: {detail}"),
        }
    }
}

/// One top-level clause (the parts of a contract joined by `and`) and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClauseReport {
    /// The clause as written in the contract.
    pub clause: String,
    pub outcome: ClauseOutcome,
}

impl fmt::Display for ClauseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.clause, self.outcome)
    }
}

/// Every clause of one contract, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractReport {
    pub name: String,
    pub clauses: Vec<ClauseReport>,
}

impl ContractReport {
    /// Whether every clause holds.
    pub fn holds(&self) -> bool {
        self.clauses.iter().all(|clause| clause.outcome.holds())
    }

    /// The clauses that do not hold (violated, missing or undefined), in written order.
    pub fn failures(&self) -> impl Iterator<Item = &ClauseReport> {
        self.clauses.iter().filter(|clause| !clause.outcome.holds())
    }
}

fn finite(value: f64) -> Result<f64, Fault<'static>> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Fault::Undefined("a result is too large to be finite"))
    }
}

impl Cond {
    pub(crate) fn eval<'a>(&'a self, env: &'a Env) -> Result<Truth, Fault<'a>> {
        match self {
            Cond::Compare { op, lhs, rhs } => {
                let (lhs, rhs) = (lhs.eval(env)?, rhs.eval(env)?);
                let (holds, margin) = match op {
                    Comparison::Lt => (lhs < rhs, rhs - lhs),
                    Comparison::Le => (lhs <= rhs, rhs - lhs),
                    Comparison::Gt => (lhs > rhs, lhs - rhs),
                    Comparison::Ge => (lhs >= rhs, lhs - rhs),
                    Comparison::Eq => (lhs == rhs, -(lhs - rhs).abs()),
                    Comparison::Ne => (lhs != rhs, (lhs - rhs).abs()),
                };
                Ok(Truth {
                    holds,
                    margin: finite(margin)?,
                })
            }
            Cond::All(items) => {
                let mut all = Truth {
                    holds: true,
                    margin: f64::INFINITY,
                };
                for item in items {
                    let truth = item.eval(env)?;
                    all.holds &= truth.holds;
                    all.margin = all.margin.min(truth.margin);
                }
                Ok(all)
            }
            Cond::Any(items) => {
                let mut any = Truth {
                    holds: false,
                    margin: f64::NEG_INFINITY,
                };
                for item in items {
                    let truth = item.eval(env)?;
                    any.holds |= truth.holds;
                    any.margin = any.margin.max(truth.margin);
                }
                Ok(any)
            }
            Cond::Not(inner) => {
                let truth = inner.eval(env)?;
                Ok(Truth {
                    holds: !truth.holds,
                    margin: -truth.margin,
                })
            }
        }
    }
}

impl Num {
    fn eval<'a>(&'a self, env: &'a Env) -> Result<f64, Fault<'a>> {
        match self {
            Num::Const(value) => Ok(*value),
            Num::Var(name) => env.scalar(name).ok_or(Fault::Missing { name, item: None }),
            Num::Neg(inner) => Ok(-inner.eval(env)?),
            Num::Arith { op, lhs, rhs } => {
                let (lhs, rhs) = (lhs.eval(env)?, rhs.eval(env)?);
                let value = match op {
                    Arithmetic::Add => lhs + rhs,
                    Arithmetic::Sub => lhs - rhs,
                    Arithmetic::Mul => lhs * rhs,
                    Arithmetic::Div if rhs == 0.0 => {
                        return Err(Fault::Undefined("division by zero"));
                    }
                    Arithmetic::Div => lhs / rhs,
                };
                finite(value)
            }
            Num::Fold { fold, list } => {
                let members = env.list(list).ok_or(Fault::Missing {
                    name: list,
                    item: None,
                })?;
                if *fold == Fold::Count {
                    // Counting needs members, not values: an unknown value still counts.
                    return Ok(members.len() as f64);
                }
                let mut acc: Option<f64> = None;
                for (item, value) in members {
                    let value = value.ok_or(Fault::Missing {
                        name: list,
                        item: Some(item),
                    })?;
                    acc = Some(match (acc, fold) {
                        (None, _) => value,
                        (Some(acc), Fold::Max) => acc.max(value),
                        (Some(acc), Fold::Min) => acc.min(value),
                        (Some(acc), _) => acc + value,
                    });
                }
                match (acc, fold) {
                    (Some(value), _) => finite(value),
                    (None, Fold::Sum) => Ok(0.0),
                    (None, Fold::Max) => Err(Fault::Undefined("max of an empty list")),
                    (None, _) => Err(Fault::Undefined("min of an empty list")),
                }
            }
            Num::Extremum { max, args } => {
                let mut acc: Option<f64> = None;
                for arg in args {
                    let value = arg.eval(env)?;
                    acc = Some(match acc {
                        None => value,
                        Some(acc) if *max => acc.max(value),
                        Some(acc) => acc.min(value),
                    });
                }
                acc.ok_or(Fault::Undefined("max or min of nothing"))
            }
        }
    }
}
