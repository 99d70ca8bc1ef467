//! Resolution of a syntax tree into a typed condition: every name is looked up in the
//! schema, every function checked for its arguments, and numbers told from conditions.

use super::{
    ContractError, Schema, column,
    expr::{Arithmetic, Comparison, Cond, Fold, Num},
    parse::{BinaryOp, Node, NodeKind},
};

const EXPECT_CONDITION: &str = "a comparison such as `cpu.temp_c < 85`";

pub(crate) struct Resolver<'a> {
    pub text: &'a str,
    pub schema: &'a Schema,
}

fn describe(node: &Node) -> &'static str {
    match &node.kind {
        NodeKind::Binary { op, .. } if op.is_comparison() => "a comparison",
        NodeKind::All(_) | NodeKind::Any(_) | NodeKind::Not(_) => "a condition",
        _ => "a number",
    }
}

impl Resolver<'_> {
    fn at(&self, node: &Node) -> usize {
        column(self.text, node.start)
    }

    pub(crate) fn condition(&self, node: &Node) -> Result<Cond, ContractError> {
        match &node.kind {
            NodeKind::Binary { op, lhs, rhs } if op.is_comparison() => {
                let op = match op {
                    BinaryOp::Lt => Comparison::Lt,
                    BinaryOp::Le => Comparison::Le,
                    BinaryOp::Gt => Comparison::Gt,
                    BinaryOp::Ge => Comparison::Ge,
                    BinaryOp::Eq => Comparison::Eq,
                    _ => Comparison::Ne,
                };
                Ok(Cond::Compare {
                    op,
                    lhs: self.number(lhs)?,
                    rhs: self.number(rhs)?,
                })
            }
            NodeKind::All(items) => Ok(Cond::All(self.conditions(items)?)),
            NodeKind::Any(items) => Ok(Cond::Any(self.conditions(items)?)),
            NodeKind::Not(inner) => Ok(Cond::Not(Box::new(self.condition(inner)?))),
            _ => Err(ContractError::TypeMismatch {
                expected: EXPECT_CONDITION,
                found: describe(node),
                at: self.at(node),
            }),
        }
    }

    fn conditions(&self, items: &[Node]) -> Result<Vec<Cond>, ContractError> {
        items.iter().map(|item| self.condition(item)).collect()
    }

    fn number(&self, node: &Node) -> Result<Num, ContractError> {
        match &node.kind {
            NodeKind::Number(value) => Ok(Num::Const(*value)),
            NodeKind::Name(name) => {
                if self.schema.has_scalar(name) {
                    Ok(Num::Var(name.as_str().into()))
                } else if self.schema.has_list(name) {
                    Err(ContractError::ListNeedsFunction {
                        name: name.clone(),
                        at: self.at(node),
                    })
                } else {
                    Err(ContractError::UnknownVariable {
                        name: name.clone(),
                        at: self.at(node),
                    })
                }
            }
            NodeKind::Neg(inner) => Ok(Num::Neg(Box::new(self.number(inner)?))),
            NodeKind::Binary { op, lhs, rhs } if !op.is_comparison() => {
                let op = match op {
                    BinaryOp::Add => Arithmetic::Add,
                    BinaryOp::Sub => Arithmetic::Sub,
                    BinaryOp::Mul => Arithmetic::Mul,
                    _ => Arithmetic::Div,
                };
                Ok(Num::Arith {
                    op,
                    lhs: Box::new(self.number(lhs)?),
                    rhs: Box::new(self.number(rhs)?),
                })
            }
            NodeKind::Call { name, args } => self.call(node, name, args),
            _ => Err(ContractError::TypeMismatch {
                expected: "a number",
                found: describe(node),
                at: self.at(node),
            }),
        }
    }

    fn call(&self, node: &Node, name: &str, args: &[Node]) -> Result<Num, ContractError> {
        let fold = match name {
            "sum" => Fold::Sum,
            "count" => Fold::Count,
            "max" => Fold::Max,
            "min" => Fold::Min,
            _ => {
                return Err(ContractError::UnknownFunction {
                    name: name.to_owned(),
                    at: self.at(node),
                });
            }
        };
        let takes_numbers = matches!(fold, Fold::Max | Fold::Min);
        match args {
            [arg] => self.list_argument(node, name, arg, fold),
            [_, _, ..] if takes_numbers => Ok(Num::Extremum {
                max: fold == Fold::Max,
                args: args
                    .iter()
                    .map(|arg| self.number(arg))
                    .collect::<Result<_, _>>()?,
            }),
            _ => Err(ContractError::WrongArity {
                function: name.to_owned(),
                expected: if takes_numbers {
                    "one list or at least two numbers"
                } else {
                    "exactly one list"
                },
                found: args.len(),
                at: self.at(node),
            }),
        }
    }

    fn list_argument(
        &self,
        node: &Node,
        function: &str,
        arg: &Node,
        fold: Fold,
    ) -> Result<Num, ContractError> {
        match &arg.kind {
            NodeKind::Name(list) if self.schema.has_list(list) => Ok(Num::Fold {
                fold,
                list: list.as_str().into(),
            }),
            NodeKind::Name(name) if !self.schema.has_scalar(name) => {
                Err(ContractError::UnknownVariable {
                    name: name.clone(),
                    at: self.at(arg),
                })
            }
            _ => Err(ContractError::ExpectedList {
                function: function.to_owned(),
                at: self.at(node),
            }),
        }
    }
}
