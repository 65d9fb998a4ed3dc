//! Errors of the logic engine, each worded to name what is wrong and where.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogicError {
    /// A relation used with a different number of arguments than it was declared or first used with.
    ArityMismatch {
        relation: String,
        expected: usize,
        found: usize,
        context: String,
    },
    /// A relation that has no declaration, no facts and no rules.
    UnknownRelation { relation: String, context: String },
    /// A variable of the head, of a negated atom or of a comparison not bound by a positive body atom.
    UnsafeVariable {
        variable: String,
        place: &'static str,
        rule: String,
    },
    /// A wildcard where a value is needed (a head argument, a comparison operand).
    Wildcard { place: &'static str, rule: String },
    /// Negation through recursion; `cycle` lists the relations around the cycle, first == last.
    Unstratifiable { cycle: Vec<String>, negated: String },
    /// A fact or an `explain` goal with variables in it.
    NotGround { atom: String },
    /// A declaration that conflicts with an earlier one.
    Redeclared { relation: String, detail: String },
    /// A dense tensor view asked of a relation too large for one.
    TooLarge {
        relation: String,
        cells: u128,
        limit: usize,
    },
    /// A symbol value made by a different engine.
    ForeignSymbol(u32),
    /// A tensor operation of dense (tensor) evaluation failed, e.g. the device ran out of memory.
    Tensor(String),
    /// A broken internal invariant (a bug in this crate, reported instead of panicking).
    Internal(String),
    /// Text given to `Rule::parse` / `Atom::parse` that is not a rule or atom.
    Parse(String),
}

impl fmt::Display for LogicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogicError::ArityMismatch {
                relation,
                expected,
                found,
                context,
            } => write!(
                f,
                "relation `{relation}` has arity {expected} but is used with {found} argument{} in {context}",
                if *found == 1 { "" } else { "s" }
            ),
            LogicError::UnknownRelation { relation, context } => write!(
                f,
                "unknown relation `{relation}` in {context}: it has no declaration, facts or rules"
            ),
            LogicError::UnsafeVariable {
                variable,
                place,
                rule,
            } => write!(
                f,
                "unsafe rule `{rule}`: variable {variable} in {place} is not bound by a positive body atom"
            ),
            LogicError::Wildcard { place, rule } => {
                write!(f, "rule `{rule}`: `_` cannot appear in {place}")
            }
            LogicError::Unstratifiable { cycle, negated } => {
                let first = cycle.first().map(String::as_str).unwrap_or("?");
                write!(
                    f,
                    "unstratifiable program: {first} depends negatively on itself via {} (negation of {negated} inside the recursion)",
                    cycle.join(" -> ")
                )
            }
            LogicError::NotGround { atom } => {
                write!(f, "`{atom}` must be ground (no variables or `_`)")
            }
            LogicError::Redeclared { relation, detail } => {
                write!(f, "relation `{relation}` redeclared: {detail}")
            }
            LogicError::TooLarge {
                relation,
                cells,
                limit,
            } => write!(
                f,
                "relation `{relation}` as a dense tensor would have {cells} cells (limit {limit}); keep it sparse"
            ),
            LogicError::ForeignSymbol(id) => write!(
                f,
                "symbol #{id} does not belong to this engine (intern it with this engine's `sym`)"
            ),
            LogicError::Tensor(msg) => write!(f, "dense (tensor) evaluation failed: {msg}"),
            LogicError::Internal(msg) => write!(f, "internal error in the logic engine: {msg}"),
            LogicError::Parse(msg) => write!(f, "parse error: {msg}"),
        }
    }
}

impl std::error::Error for LogicError {}
