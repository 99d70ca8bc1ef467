//! Parser of the contract language: a precedence-climbing parser from tokens to an
//! untyped syntax tree with spans. Names and types are checked later, by `resolve`.
//!
//! # Invariants
//! - parsing never recurses more than [`MAX_NESTING`] levels, and no tree it returns is
//!   deeper than [`MAX_DEPTH`] nodes, so no input can exhaust the stack
//! - `and` and `or` chains are flat (n-ary), so long clause lists stay shallow

use super::{
    ContractError, column,
    lex::{Token, TokenKind},
};

/// How many parentheses, `not`s and unary minuses may nest.
pub const MAX_NESTING: usize = 32;
/// How deep the syntax tree may grow (an operand chain `a + b + ...` adds one per term).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl BinaryOp {
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Eq | BinaryOp::Ne
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Number(f64),
    Name(String),
    Call {
        name: String,
        args: Vec<Node>,
    },
    Neg(Box<Node>),
    Not(Box<Node>),
    Binary {
        op: BinaryOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    All(Vec<Node>),
    Any(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: NodeKind,
    /// Byte span in the source, including any parentheses around the node.
    pub start: usize,
    pub end: usize,
    /// 1 for a leaf; one more than the deepest child otherwise.
    pub depth: usize,
    /// Written inside its own parentheses: stops `and`/`or` flattening and comparison
    /// chaining from reaching into it.
    pub parenthesized: bool,
}

const LOGIC_OR: u8 = 1;
const LOGIC_AND: u8 = 3;
const PREFIX_NOT: u8 = 5;
const COMPARISON: u8 = 7;
const ADDITIVE: u8 = 9;
const MULTIPLICATIVE: u8 = 11;
const PREFIX_MINUS: u8 = 13;

const EXPECT_OPERAND: &str = "a number, a variable, a function call, `(`, `-` or `not`";
const EXPECT_AFTER_OPERAND: &str = "an operator, `and`, `or`, `)` or the end";

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    pos: usize,
    /// Parentheses opened and not yet closed, so a stray `)` is told apart.
    open_parens: usize,
    nesting: usize,
}

/// Parses `text` into a syntax tree.
pub(crate) fn parse(text: &str, tokens: Vec<Token>) -> Result<Node, ContractError> {
    if tokens.is_empty() {
        return Err(ContractError::Empty);
    }
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
        open_parens: 0,
        nesting: 0,
    };
    let node = parser.expression(0)?;
    match parser.peek() {
        None => Ok(node),
        Some(token) if token.kind == TokenKind::RParen => {
            Err(ContractError::UnbalancedParenthesis {
                at: column(text, token.start),
            })
        }
        Some(token) => Err(parser.unexpected(token, EXPECT_AFTER_OPERAND)),
    }
}

fn infix(kind: &TokenKind) -> Option<(u8, Option<BinaryOp>)> {
    let op = match kind {
        TokenKind::Or => return Some((LOGIC_OR, None)),
        TokenKind::And => return Some((LOGIC_AND, None)),
        TokenKind::Lt => BinaryOp::Lt,
        TokenKind::Le => BinaryOp::Le,
        TokenKind::Gt => BinaryOp::Gt,
        TokenKind::Ge => BinaryOp::Ge,
        TokenKind::EqEq => BinaryOp::Eq,
        TokenKind::Ne => BinaryOp::Ne,
        TokenKind::Plus => BinaryOp::Add,
        TokenKind::Minus => BinaryOp::Sub,
        TokenKind::Star => BinaryOp::Mul,
        TokenKind::Slash => BinaryOp::Div,
        _ => return None,
    };
    let power = match op {
        BinaryOp::Add | BinaryOp::Sub => ADDITIVE,
        BinaryOp::Mul | BinaryOp::Div => MULTIPLICATIVE,
        _ => COMPARISON,
    };
    Some((power, Some(op)))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        if token.is_some() {
            self.pos += 1;
        }
        token
    }

    fn end_column(&self) -> usize {
        column(self.text, self.text.len())
    }

    fn unexpected(&self, token: &Token, expected: &'static str) -> ContractError {
        ContractError::UnexpectedToken {
            found: self.text[token.start..token.end].to_owned(),
            expected,
            at: column(self.text, token.start),
        }
    }

    fn node(
        &self,
        kind: NodeKind,
        start: usize,
        end: usize,
        depth: usize,
    ) -> Result<Node, ContractError> {
        if depth > MAX_DEPTH {
            return Err(ContractError::TooDeep {
                max: MAX_DEPTH,
                at: column(self.text, start),
            });
        }
        Ok(Node {
            kind,
            start,
            end,
            depth,
            parenthesized: false,
        })
    }

    /// Parses an expression whose operators all bind at least as tightly as `min_power`.
    fn expression(&mut self, min_power: u8) -> Result<Node, ContractError> {
        self.nesting += 1;
        let result = self.expression_nested(min_power);
        self.nesting -= 1;
        result
    }

    fn expression_nested(&mut self, min_power: u8) -> Result<Node, ContractError> {
        let mut lhs = self.prefix()?;
        while let Some(token) = self.peek() {
            let Some((power, op)) = infix(&token.kind) else {
                break;
            };
            if power < min_power {
                break;
            }
            let token = token.clone();
            if let Some(op) = op
                && op.is_comparison()
                && matches!(&lhs.kind, NodeKind::Binary { op, .. } if op.is_comparison())
                && !lhs.parenthesized
            {
                return Err(self.unexpected(
                    &token,
                    "`and`, `or`, `)` or the end (comparisons do not chain)",
                ));
            }
            self.pos += 1;
            // Left-associative: the right operand binds one step tighter.
            let rhs = self.expression(power + 1)?;
            let start = lhs.start;
            let end = rhs.end;
            lhs = match op {
                Some(op) => {
                    let depth = lhs.depth.max(rhs.depth) + 1;
                    self.node(
                        NodeKind::Binary {
                            op,
                            lhs: Box::new(lhs),
                            rhs: Box::new(rhs),
                        },
                        start,
                        end,
                        depth,
                    )?
                }
                None => self.logical(token.kind == TokenKind::And, lhs, rhs)?,
            };
        }
        Ok(lhs)
    }

    /// Joins `lhs` and `rhs` with `and` (`all`) or `or`, flattening chains.
    fn logical(&self, all: bool, lhs: Node, rhs: Node) -> Result<Node, ContractError> {
        let (start, end) = (lhs.start, rhs.end);
        let mut items = match lhs.kind {
            NodeKind::All(items) if all && !lhs.parenthesized => items,
            NodeKind::Any(items) if !all && !lhs.parenthesized => items,
            kind => vec![Node { kind, ..lhs }],
        };
        items.push(rhs);
        let depth = items.iter().map(|item| item.depth).max().unwrap_or(0) + 1;
        let kind = if all {
            NodeKind::All(items)
        } else {
            NodeKind::Any(items)
        };
        self.node(kind, start, end, depth)
    }

    fn prefix(&mut self) -> Result<Node, ContractError> {
        if self.nesting > MAX_NESTING {
            let at = self
                .peek()
                .map_or_else(|| self.end_column(), |token| column(self.text, token.start));
            return Err(ContractError::TooDeep {
                max: MAX_NESTING,
                at,
            });
        }
        let Some(token) = self.next() else {
            return Err(ContractError::UnexpectedEnd {
                expected: EXPECT_OPERAND,
                at: self.end_column(),
            });
        };
        match token.kind {
            TokenKind::Number(value) => {
                self.node(NodeKind::Number(value), token.start, token.end, 1)
            }
            TokenKind::Ident => {
                let name = self.text[token.start..token.end].to_owned();
                if self
                    .peek()
                    .is_some_and(|next| next.kind == TokenKind::LParen)
                {
                    self.call(name, token)
                } else {
                    self.node(NodeKind::Name(name), token.start, token.end, 1)
                }
            }
            TokenKind::LParen => {
                self.open_parens += 1;
                let mut inner = self.expression(0)?;
                match self.next() {
                    Some(close) if close.kind == TokenKind::RParen => {
                        self.open_parens -= 1;
                        inner.start = token.start;
                        inner.end = close.end;
                        inner.parenthesized = true;
                        Ok(inner)
                    }
                    Some(other) => Err(self.unexpected(&other, "`)`")),
                    None => Err(ContractError::UnbalancedParenthesis {
                        at: column(self.text, token.start),
                    }),
                }
            }
            TokenKind::Minus => {
                let operand = self.expression(PREFIX_MINUS)?;
                let (end, depth) = (operand.end, operand.depth + 1);
                self.node(NodeKind::Neg(Box::new(operand)), token.start, end, depth)
            }
            TokenKind::Not => {
                let operand = self.expression(PREFIX_NOT)?;
                let (end, depth) = (operand.end, operand.depth + 1);
                self.node(NodeKind::Not(Box::new(operand)), token.start, end, depth)
            }
            TokenKind::RParen if self.open_parens == 0 => {
                Err(ContractError::UnbalancedParenthesis {
                    at: column(self.text, token.start),
                })
            }
            _ => Err(self.unexpected(&token, EXPECT_OPERAND)),
        }
    }

    /// Parses `name(arg, ...)`; the current token is the `(`.
    fn call(&mut self, name: String, name_token: Token) -> Result<Node, ContractError> {
        let Some(open) = self.next() else {
            return Err(ContractError::UnexpectedEnd {
                expected: "`(`",
                at: self.end_column(),
            });
        };
        self.open_parens += 1;
        let mut args = Vec::new();
        if let Some(close) = self.peek().filter(|token| token.kind == TokenKind::RParen) {
            let end = close.end;
            self.pos += 1;
            self.open_parens -= 1;
            return self.node(NodeKind::Call { name, args }, name_token.start, end, 1);
        }
        loop {
            args.push(self.expression(0)?);
            match self.next() {
                Some(token) if token.kind == TokenKind::Comma => continue,
                Some(token) if token.kind == TokenKind::RParen => {
                    self.open_parens -= 1;
                    let depth = args.iter().map(|arg| arg.depth).max().unwrap_or(0) + 1;
                    return self.node(
                        NodeKind::Call { name, args },
                        name_token.start,
                        token.end,
                        depth,
                    );
                }
                Some(token) => return Err(self.unexpected(&token, "`,` or `)`")),
                None => {
                    return Err(ContractError::UnbalancedParenthesis {
                        at: column(self.text, open.start),
                    });
                }
            }
        }
    }
}
