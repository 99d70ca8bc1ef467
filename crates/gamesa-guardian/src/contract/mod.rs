//! Safety contracts: a small expression language written as strings in config, parsed
//! against a [`Schema`] when config loads, and evaluated clause by clause.
//!
//! ```text
//! cpu.temp_c < 85 and gpu0.temp_c < 85
//! sum(power.limit_mw) <= node.cap_mw
//! gpu0.temp_c + 0.25 * gpu0.delta_power_w < gpu0.t_max_c - 5
//! ```
//!
//! The grammar, the error messages and the meaning of a margin are written down in
//! `docs/guardian.md`.
//!
//! # Invariants
//! - a [`Contract`] only exists if every name in it is known to the schema it was
//!   parsed with, and every function has the arguments it needs
//! - parsing never panics and never recurses without bound, whatever the input

mod env;
mod error;
mod eval;
mod expr;
mod lex;
mod parse;
mod resolve;
mod schema;
mod set;
mod telemetry;

use std::fmt;

pub use env::Env;
pub use error::ContractError;
pub use eval::{ClauseOutcome, ClauseReport, ContractReport};
pub use parse::{MAX_DEPTH, MAX_NESTING};
pub use schema::Schema;
pub use set::{
    ContractFailure, ContractPhase, ContractScope, ContractSet, ContractSetError,
    MissingValuePolicy, Subject,
};
pub use telemetry::{TelemetryEnv, env_from_telemetry, schema_for_components};

use self::{expr::Cond, resolve::Resolver};

/// The largest number a literal may write: 2^53, beyond which not every integer is
/// exactly representable.
pub const MAX_LITERAL: f64 = 9_007_199_254_740_992.0;
/// The longest contract accepted, in bytes.
pub const MAX_LENGTH: usize = 4096;

/// The 1-based column, in characters, of byte offset `byte` of `text`.
fn column(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(byte, |head| head.chars().count()) + 1
}

/// One top-level clause: its text as written and its condition.
#[derive(Debug, Clone, PartialEq)]
struct Clause {
    text: String,
    cond: Cond,
}

/// A parsed contract: a name, its source text, and its top-level clauses (the parts
/// joined by `and` outside any parentheses), each reported on separately.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    name: String,
    text: String,
    clauses: Vec<Clause>,
}

impl Contract {
    /// Parses `text`, checking every variable against `schema`.
    pub fn parse(
        name: impl Into<String>,
        text: &str,
        schema: &Schema,
    ) -> Result<Contract, ContractError> {
        if text.len() > MAX_LENGTH {
            return Err(ContractError::TooLong {
                len: text.len(),
                max: MAX_LENGTH,
            });
        }
        let tokens = lex::lex(text)?;
        let tree = parse::parse(text, tokens)?;
        let resolver = Resolver { text, schema };
        let items = match tree.kind {
            parse::NodeKind::All(items) => items,
            kind => vec![parse::Node { kind, ..tree }],
        };
        let clauses = items
            .iter()
            .map(|item| {
                Ok(Clause {
                    text: text
                        .get(item.start..item.end)
                        .unwrap_or(text)
                        .trim()
                        .to_owned(),
                    cond: resolver.condition(item)?,
                })
            })
            .collect::<Result<_, ContractError>>()?;
        Ok(Contract {
            name: name.into(),
            text: text.to_owned(),
            clauses,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The contract as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The top-level clauses as written, in order.
    pub fn clauses(&self) -> impl Iterator<Item = &str> {
        self.clauses.iter().map(|clause| clause.text.as_str())
    }

    /// Evaluates every clause and reports each one.
    pub fn evaluate(&self, env: &Env) -> ContractReport {
        ContractReport {
            name: self.name.clone(),
            clauses: self
                .clauses
                .iter()
                .map(|clause| ClauseReport {
                    clause: clause.text.clone(),
                    outcome: ClauseOutcome::from_result(clause.cond.eval(env)),
                })
                .collect(),
        }
    }

    /// The hot-path check: `Ok` with the smallest margin when every clause holds, or the
    /// first clause that does not (violated, missing or undefined). Allocates only to
    /// report a failure.
    pub fn check(&self, env: &Env) -> Result<f64, ClauseReport> {
        self.check_with(env, MissingValuePolicy::Deny)
    }

    /// [`Contract::check`], where a clause with a missing value is either a failure
    /// (`Deny`) or skipped (`Skip`).
    pub fn check_with(&self, env: &Env, missing: MissingValuePolicy) -> Result<f64, ClauseReport> {
        let mut tightest = f64::INFINITY;
        for clause in &self.clauses {
            match clause.cond.eval(env) {
                Ok(truth) if truth.holds => tightest = tightest.min(truth.margin),
                Err(eval::Fault::Missing { .. }) if missing == MissingValuePolicy::Skip => {}
                result => {
                    return Err(ClauseReport {
                        clause: clause.text.clone(),
                        outcome: ClauseOutcome::from_result(result),
                    });
                }
            }
        }
        Ok(tightest)
    }
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn schema() -> Schema {
        schema_for_components(["cpu", "gpu0"])
            .with_scalar("gpu0.r_th")
            .with_scalar("zero")
    }

    fn parse(text: &str) -> Result<Contract, ContractError> {
        Contract::parse("test", text, &schema())
    }

    fn env() -> Env {
        let mut env = Env::new();
        env.set_scalar("cpu.temp_c", 70.0);
        env.set_scalar("gpu0.temp_c", 80.0);
        env.set_scalar("gpu0.t_max_c", 90.0);
        env.set_scalar("gpu0.delta_power_w", 20.0);
        env.set_scalar("gpu0.r_th", 0.25);
        env.set_scalar("node.cap_mw", 400_000.0);
        env.set_scalar("zero", 0.0);
        env.set_list_item("power.limit_mw", "cpu", Some(150_000.0));
        env.set_list_item("power.limit_mw", "gpu0", Some(300_000.0));
        env.declare_list("power.draw_mw");
        env
    }

    /// Asserts the message carries the column, and the excerpt puts a caret under it.
    fn assert_positioned(err: &ContractError, text: &str, at: usize) {
        let message = err.to_string();
        assert!(
            message.contains(&format!("at column {at}")),
            "message `{message}` lacks its column"
        );
        let excerpt = err.excerpt(text);
        let caret_line = excerpt.lines().nth(1).unwrap();
        assert_eq!(caret_line.find('^'), Some(2 + at - 1), "{excerpt}");
    }

    #[test]
    fn unknown_variable_names_the_variable_and_column() {
        let text = "cpu.temp_c < 85 and gpu0.tmp_c < 85";
        let err = parse(text).unwrap_err();
        assert_eq!(
            err,
            ContractError::UnknownVariable {
                name: "gpu0.tmp_c".into(),
                at: 21
            }
        );
        assert_positioned(&err, text, 21);
        assert_eq!(
            err.excerpt(text),
            "  cpu.temp_c < 85 and gpu0.tmp_c < 85\n                      ^^^^^^^^^^"
        );
    }

    #[test]
    fn unknown_operator_names_the_operator_and_column() {
        let text = "cpu.temp_c < 85 && gpu0.temp_c < 85";
        let err = parse(text).unwrap_err();
        assert_eq!(
            err,
            ContractError::UnknownOperator {
                op: "&&".into(),
                at: 17
            }
        );
        assert_positioned(&err, text, 17);
        assert!(err.to_string().contains("use `and`"));
    }

    #[test]
    fn unclosed_parenthesis_points_at_the_open_one() {
        let text = "(cpu.temp_c + 5 < 85";
        let err = parse(text).unwrap_err();
        assert_eq!(err, ContractError::UnbalancedParenthesis { at: 1 });
        assert_positioned(&err, text, 1);
    }

    #[test]
    fn stray_closing_parenthesis_points_at_itself() {
        let text = "cpu.temp_c < 85)";
        let err = parse(text).unwrap_err();
        assert_eq!(err, ContractError::UnbalancedParenthesis { at: 16 });
        assert_positioned(&err, text, 16);
        let text = ") < 1";
        assert_eq!(
            parse(text).unwrap_err(),
            ContractError::UnbalancedParenthesis { at: 1 }
        );
        let text = "sum(power.limit_mw <= 1";
        assert_eq!(
            parse(text).unwrap_err(),
            ContractError::UnbalancedParenthesis { at: 4 }
        );
    }

    #[test]
    fn empty_input_is_its_own_error() {
        for text in ["", "   ", "\n\t"] {
            let err = parse(text).unwrap_err();
            assert_eq!(err, ContractError::Empty);
            assert_eq!(err.to_string(), "the contract is empty");
            assert_eq!(err.excerpt(text), "");
        }
    }

    #[test]
    fn number_out_of_range_names_the_literal_and_column() {
        let text = "node.cap_mw < 99999999999999999999";
        let err = parse(text).unwrap_err();
        assert_eq!(
            err,
            ContractError::NumberOutOfRange {
                text: "99999999999999999999".into(),
                at: 15
            }
        );
        assert_positioned(&err, text, 15);
        let huge = format!("1 < {}", "9".repeat(400));
        assert!(matches!(
            parse(&huge),
            Err(ContractError::NumberOutOfRange { at: 5, .. })
        ));
        assert!(parse("node.cap_mw < 9007199254740992").is_ok());
    }

    #[test]
    fn other_syntax_errors_carry_their_column() {
        let cases: Vec<(&str, ContractError)> = vec![
            (
                "cpu.temp_c < ",
                ContractError::UnexpectedEnd {
                    expected: "a number, a variable, a function call, `(`, `-` or `not`",
                    at: 14,
                },
            ),
            (
                "cpu.temp_c 85",
                ContractError::UnexpectedToken {
                    found: "85".into(),
                    expected: "an operator, `and`, `or`, `)` or the end",
                    at: 12,
                },
            ),
            (
                "avg(power.limit_mw) < 5",
                ContractError::UnknownFunction {
                    name: "avg".into(),
                    at: 1,
                },
            ),
            (
                "sum(power.limit_mw, power.draw_mw) < 5",
                ContractError::WrongArity {
                    function: "sum".into(),
                    expected: "exactly one list",
                    found: 2,
                    at: 1,
                },
            ),
            (
                "1 < sum(cpu.temp_c)",
                ContractError::ExpectedList {
                    function: "sum".into(),
                    at: 5,
                },
            ),
            (
                "power.limit_mw < 5",
                ContractError::ListNeedsFunction {
                    name: "power.limit_mw".into(),
                    at: 1,
                },
            ),
            (
                "cpu.temp_c + 1",
                ContractError::TypeMismatch {
                    expected: "a comparison such as `cpu.temp_c < 85`",
                    found: "a number",
                    at: 1,
                },
            ),
            (
                "1 + (cpu.temp_c < 2) < 3",
                ContractError::TypeMismatch {
                    expected: "a number",
                    found: "a comparison",
                    at: 5,
                },
            ),
            (
                "1 < 2 < 3",
                ContractError::UnexpectedToken {
                    found: "<".into(),
                    expected: "`and`, `or`, `)` or the end (comparisons do not chain)",
                    at: 7,
                },
            ),
            (
                "1. < 2",
                ContractError::MalformedNumber {
                    text: "1.".into(),
                    at: 1,
                },
            ),
            (
                "cpu.temp_c < 85 # hot",
                ContractError::UnexpectedCharacter { ch: '#', at: 17 },
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err, expected, "{text}");
            assert_positioned(&err, text, err.at().unwrap());
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}1{} < 2", "(".repeat(100), ")".repeat(100));
        assert_eq!(
            parse(&deep),
            Err(ContractError::TooDeep {
                max: MAX_NESTING,
                at: MAX_NESTING + 1
            })
        );
        let long_chain = format!("1 {} < 2", "+ 1 ".repeat(100));
        assert!(matches!(
            parse(&long_chain),
            Err(ContractError::TooDeep { max: MAX_DEPTH, .. })
        ));
        let many_clauses = vec!["cpu.temp_c < 85"; 200].join(" and ");
        assert_eq!(parse(&many_clauses).unwrap().clauses().count(), 200);
        assert!(matches!(
            parse(&"x".repeat(MAX_LENGTH + 1)),
            Err(ContractError::TooLong { .. })
        ));
    }

    #[test]
    fn clauses_are_the_top_level_conjuncts() {
        let contract =
            parse("cpu.temp_c < 85 and (gpu0.temp_c < 80 or gpu0.temp_c < 90) and not 1 > 2")
                .unwrap();
        assert_eq!(
            contract.clauses().collect::<Vec<_>>(),
            vec![
                "cpu.temp_c < 85",
                "(gpu0.temp_c < 80 or gpu0.temp_c < 90)",
                "not 1 > 2"
            ]
        );
    }

    #[test]
    fn evaluation_names_the_failed_clause_and_its_margin() {
        let contract = parse(
            "cpu.temp_c < 85 and sum(power.limit_mw) <= node.cap_mw \
             and gpu0.temp_c + gpu0.r_th * gpu0.delta_power_w < gpu0.t_max_c - 5",
        )
        .unwrap();
        let report = contract.evaluate(&env());
        assert!(!report.holds());
        assert_eq!(
            report.clauses,
            vec![
                ClauseReport {
                    clause: "cpu.temp_c < 85".into(),
                    outcome: ClauseOutcome::Holds { margin: 15.0 },
                },
                ClauseReport {
                    clause: "sum(power.limit_mw) <= node.cap_mw".into(),
                    outcome: ClauseOutcome::Violated { margin: -50_000.0 },
                },
                ClauseReport {
                    clause: "gpu0.temp_c + gpu0.r_th * gpu0.delta_power_w < gpu0.t_max_c - 5"
                        .into(),
                    outcome: ClauseOutcome::Violated { margin: 0.0 },
                },
            ]
        );
        assert_eq!(
            contract.check(&env()).unwrap_err().to_string(),
            "`sum(power.limit_mw) <= node.cap_mw` violated by 50000 (margin -50000)"
        );
    }

    #[test]
    fn holding_contract_reports_its_tightest_margin() {
        let contract =
            parse("cpu.temp_c < 85 and gpu0.temp_c <= 82 and count(power.limit_mw) == 2").unwrap();
        assert_eq!(contract.check(&env()), Ok(0.0));
        let contract = parse("max(power.limit_mw) - min(power.limit_mw) >= 150000").unwrap();
        assert_eq!(contract.check(&env()), Ok(0.0));
        let contract = parse("max(cpu.temp_c, gpu0.temp_c, 75) < 81").unwrap();
        assert_eq!(contract.check(&env()), Ok(1.0));
    }

    #[test]
    fn operators_have_their_usual_precedence() {
        let contract =
            parse("1 + 2 * 3 == 7 and -2 * -3 == 6 and 8 / 4 / 2 == 1 and 5 - 3 - 1 == 1").unwrap();
        assert!(contract.evaluate(&env()).holds());
        let contract = parse("not 1 > 2 and (1 > 2 or 2 > 1)").unwrap();
        assert!(contract.evaluate(&env()).holds());
    }

    #[test]
    fn missing_values_are_reported_distinctly() {
        let contract = parse("cpu.util < 0.9 and sum(power.draw_mw) < 1").unwrap();
        let report = contract.evaluate(&env());
        assert_eq!(
            report.clauses[0].outcome,
            ClauseOutcome::Missing {
                variable: "cpu.util".into()
            }
        );
        assert_eq!(
            report.clauses[1].outcome,
            ClauseOutcome::Holds { margin: 1.0 }
        );

        let mut env = env();
        env.set_list_item("power.limit_mw", "gpu0", None);
        let contract = parse("sum(power.limit_mw) < 1000000").unwrap();
        assert_eq!(
            contract.check(&env).unwrap_err().outcome,
            ClauseOutcome::Missing {
                variable: "power.limit_mw[gpu0]".into()
            }
        );
        assert_eq!(
            contract.check_with(&env, MissingValuePolicy::Skip),
            Ok(f64::INFINITY)
        );
    }

    #[test]
    fn undefined_results_are_reported_not_guessed() {
        let contract = parse("1 / zero < 5").unwrap();
        assert_eq!(
            contract.check(&env()).unwrap_err().outcome,
            ClauseOutcome::Undefined {
                detail: "division by zero".into()
            }
        );
        let contract = parse("max(power.draw_mw) < 5").unwrap();
        assert!(matches!(
            contract.check(&env()).unwrap_err().outcome,
            ClauseOutcome::Undefined { .. }
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parser_never_panics_on_arbitrary_text(text in "\\PC{0,80}") {
            let _ = parse(&text);
        }

        #[test]
        fn parser_never_panics_on_contract_like_text(
            parts in proptest::collection::vec(
                prop::sample::select(vec![
                    "cpu.temp_c", "power.limit_mw", "sum", "max", "(", ")", ",", "<", "<=",
                    "==", "!=", "+", "-", "*", "/", "and", "or", "not", "85", "0.5", "&&",
                    "=", "node.cap_mw", "1.", "é", " ",
                ]),
                0..40,
            )
        ) {
            let text = parts.join(" ");
            if let Err(err) = parse(&text) {
                let _ = err.excerpt(&text);
                let _ = err.to_string();
            }
            let glued = parts.concat();
            if let Ok(contract) = parse(&glued) {
                let _ = contract.evaluate(&env());
            }
        }
    }
}
