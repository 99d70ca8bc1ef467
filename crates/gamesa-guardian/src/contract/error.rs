//! Why a contract string failed to parse: one variant per mistake, each with the
//! 1-based column it was found at.

use thiserror::Error;

/// A contract that could not be parsed or checked against its schema. `at` is the
/// 1-based column (in characters) of the offending text; [`ContractError::excerpt`]
/// draws it under the source line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContractError {
    #[error("the contract is empty")]
    Empty,
    #[error("the contract is {len} characters long; the limit is {max}")]
    TooLong { len: usize, max: usize },
    #[error("unexpected character `{ch}` at column {at}")]
    UnexpectedCharacter { ch: char, at: usize },
    #[error("unknown operator `{op}` at column {at}{}", operator_hint(op))]
    UnknownOperator { op: String, at: usize },
    #[error("malformed number `{text}` at column {at} (write decimals as `0.5`)")]
    MalformedNumber { text: String, at: usize },
    #[error(
        "number `{text}` at column {at} is out of range (at most {} in magnitude)",
        super::MAX_LITERAL
    )]
    NumberOutOfRange { text: String, at: usize },
    #[error("unbalanced parenthesis at column {at}")]
    UnbalancedParenthesis { at: usize },
    #[error("unexpected `{found}` at column {at}: expected {expected}")]
    UnexpectedToken {
        found: String,
        expected: &'static str,
        at: usize,
    },
    #[error("the contract ends too early at column {at}: expected {expected}")]
    UnexpectedEnd { expected: &'static str, at: usize },
    #[error("unknown variable `{name}` at column {at}")]
    UnknownVariable { name: String, at: usize },
    #[error("unknown function `{name}` at column {at} (expected sum, max, min or count)")]
    UnknownFunction { name: String, at: usize },
    #[error("`{function}` at column {at} takes {expected}, got {found} argument(s)")]
    WrongArity {
        function: String,
        expected: &'static str,
        found: usize,
        at: usize,
    },
    #[error("`{function}` at column {at} expects a list variable such as `power.limit_mw`")]
    ExpectedList { function: String, at: usize },
    #[error("`{name}` at column {at} is a list: use it inside sum(), max(), min() or count()")]
    ListNeedsFunction { name: String, at: usize },
    #[error("expected {expected} at column {at}, found {found}")]
    TypeMismatch {
        expected: &'static str,
        found: &'static str,
        at: usize,
    },
    #[error("the contract nests too deeply at column {at} (at most {max} levels)")]
    TooDeep { max: usize, at: usize },
}

fn operator_hint(op: &str) -> &'static str {
    match op {
        "&&" | "&" => " (use `and`)",
        "||" | "|" => " (use `or`)",
        "!" => " (use `not`)",
        "=" => " (use `==` to compare)",
        "=<" => " (use `<=`)",
        "=>" => " (use `>=`)",
        "<>" => " (use `!=`)",
        _ => "",
    }
}

impl ContractError {
    /// The 1-based column the error points at, when it points at one.
    pub fn at(&self) -> Option<usize> {
        match self {
            ContractError::Empty | ContractError::TooLong { .. } => None,
            ContractError::UnexpectedCharacter { at, .. }
            | ContractError::UnknownOperator { at, .. }
            | ContractError::MalformedNumber { at, .. }
            | ContractError::NumberOutOfRange { at, .. }
            | ContractError::UnbalancedParenthesis { at }
            | ContractError::UnexpectedToken { at, .. }
            | ContractError::UnexpectedEnd { at, .. }
            | ContractError::UnknownVariable { at, .. }
            | ContractError::UnknownFunction { at, .. }
            | ContractError::WrongArity { at, .. }
            | ContractError::ExpectedList { at, .. }
            | ContractError::ListNeedsFunction { at, .. }
            | ContractError::TypeMismatch { at, .. }
            | ContractError::TooDeep { at, .. } => Some(*at),
        }
    }

    /// How many characters the caret line underlines.
    fn width(&self) -> usize {
        let len = |text: &str| text.chars().count().max(1);
        match self {
            ContractError::UnknownOperator { op, .. } => len(op),
            ContractError::MalformedNumber { text, .. }
            | ContractError::NumberOutOfRange { text, .. } => len(text),
            ContractError::UnexpectedToken { found, .. } => len(found),
            ContractError::UnknownVariable { name, .. }
            | ContractError::UnknownFunction { name, .. }
            | ContractError::ListNeedsFunction { name, .. } => len(name),
            ContractError::WrongArity { function, .. }
            | ContractError::ExpectedList { function, .. } => len(function),
            _ => 1,
        }
    }

    /// The source line with a caret under the offending text, for error messages:
    ///
    /// ```text
    ///   gpu0.tmp_c < 85
    ///   ^^^^^^^^^^
    /// ```
    ///
    /// Empty when the error has no position.
    pub fn excerpt(&self, text: &str) -> String {
        let Some(at) = self.at() else {
            return String::new();
        };
        let line: String = text
            .chars()
            .map(|ch| if ch.is_control() { ' ' } else { ch })
            .collect();
        let pad = " ".repeat(at.saturating_sub(1));
        let carets = "^".repeat(self.width());
        format!("  {}\n  {pad}{carets}", line.trim_end())
    }
}
