//! Why a scenario file was rejected: every error names the field (as a TOML path such as
//! `components.gpu0.min_w` or `phases[2].at_s`) and, for TOML errors, the line and column.

use std::{fmt, ops::Range, path::PathBuf};

use thiserror::Error;
use toml::de::{DeTable, DeValue};

/// A position in the scenario text, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A scenario that cannot be loaded. [`ScenarioError::field`] gives the field it names.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScenarioError {
    /// TOML syntax, an unknown key, a missing key or a value of the wrong type.
    /// `field` is absent for syntax errors, which happen before any field is known.
    #[error(
        "{}{}{message}",
        .at.map(|at| format!("{at}: ")).unwrap_or_default(),
        .field.as_deref().map(|field| format!("{field}: ")).unwrap_or_default()
    )]
    Toml {
        field: Option<String>,
        at: Option<Position>,
        message: String,
    },
    /// A value outside the range its field allows.
    #[error("{field}: {value} is out of range: {expected}")]
    OutOfRange {
        field: String,
        value: f64,
        expected: &'static str,
    },
    /// A value that contradicts another field (`min_w > max_w`, `idle_w >= tdp_w`, ...).
    #[error("{field}: {reason}")]
    Inconsistent { field: String, reason: String },
    /// A phase, event or job that names a component the scenario does not declare.
    #[error("{field}: unknown component `{component}`")]
    UnknownComponent { field: String, component: String },
    /// A field a phase or an event of this kind needs (`needed_by`: `a phase`,
    /// `a cap_drop event`, ...).
    #[error("{field}: missing, {needed_by} needs it")]
    MissingField {
        field: String,
        needed_by: &'static str,
    },
    /// A field an event of this kind does not use.
    #[error("{field}: not a field of a {kind} event")]
    UnexpectedField { field: String, kind: &'static str },
    /// Phases must be listed in time order.
    #[error("{field}: {at_s} s comes before the previous phase at {previous_at_s} s")]
    NotSorted {
        field: String,
        at_s: f64,
        previous_at_s: f64,
    },
    #[error("{path}: cannot read: {reason}")]
    Io { path: PathBuf, reason: String },
    /// Any of the above, met in a file.
    #[error("{path}: {error}")]
    InFile {
        path: PathBuf,
        error: Box<ScenarioError>,
    },
}

impl ScenarioError {
    /// The field the error names, as a TOML path (`components.gpu0.min_w`).
    pub fn field(&self) -> Option<&str> {
        match self {
            ScenarioError::Toml { field, .. } => field.as_deref(),
            ScenarioError::OutOfRange { field, .. }
            | ScenarioError::Inconsistent { field, .. }
            | ScenarioError::UnknownComponent { field, .. }
            | ScenarioError::MissingField { field, .. }
            | ScenarioError::UnexpectedField { field, .. }
            | ScenarioError::NotSorted { field, .. } => Some(field),
            ScenarioError::Io { .. } => None,
            ScenarioError::InFile { error, .. } => error.field(),
        }
    }

    /// Converts a `toml` error, locating it in `input` and naming the field it falls on.
    pub(super) fn from_toml(input: &str, error: &toml::de::Error) -> ScenarioError {
        let span = error.span();
        ScenarioError::Toml {
            field: span.clone().and_then(|span| field_at(input, span)),
            at: span.map(|span| position_of(input, span.start)),
            message: error.message().trim().to_owned(),
        }
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `input`.
fn position_of(input: &str, offset: usize) -> Position {
    let mut offset = offset.min(input.len());
    while !input.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &input[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// The TOML path of the key or value that `span` falls on, when the text parses.
fn field_at(input: &str, span: Range<usize>) -> Option<String> {
    let document = DeTable::parse(input).ok()?;
    let mut path = String::new();
    find_in_table(document.get_ref(), span.start, &mut path).then_some(path)
}

fn find_in_table(table: &DeTable<'_>, offset: usize, path: &mut String) -> bool {
    for (key, value) in table {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        if key.span().contains(&offset) || find_in_value(value.get_ref(), offset, path) {
            return true;
        }
        // A value that holds the offset but none of whose children do: the error is about
        // the value as a whole (a missing key, a wrong type).
        if value.span().contains(&offset) {
            return true;
        }
        path.truncate(len);
    }
    false
}

fn find_in_value(value: &DeValue<'_>, offset: usize, path: &mut String) -> bool {
    match value {
        DeValue::Table(table) => find_in_table(table, offset, path),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                if find_in_value(item.get_ref(), offset, path) || item.span().contains(&offset) {
                    return true;
                }
                path.truncate(len);
            }
            false
        }
        _ => false,
    }
}
