//! The typed expression tree of a contract: conditions over numbers, with every name
//! already checked against the schema.

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arithmetic {
    Add,
    Sub,
    Mul,
    Div,
}

/// A function folding a list variable into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fold {
    Sum,
    Max,
    Min,
    Count,
}

/// Something that holds or not.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    Compare { op: Comparison, lhs: Num, rhs: Num },
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

/// Something that evaluates to a number.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Num {
    Const(f64),
    /// A scalar variable.
    Var(Box<str>),
    Neg(Box<Num>),
    Arith {
        op: Arithmetic,
        lhs: Box<Num>,
        rhs: Box<Num>,
    },
    /// `sum`, `max`, `min` or `count` over a list variable.
    Fold {
        fold: Fold,
        list: Box<str>,
    },
    /// `max(a, b, ...)` or `min(a, b, ...)` over two or more numbers.
    Extremum {
        max: bool,
        args: Vec<Num>,
    },
}
