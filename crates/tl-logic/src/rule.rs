//! The crate's own rule language: atoms, literals, rules, with `Display` and a small text parser
//! (`Rule::parse("Anc(X, Z) <- Par(X, Y), Anc(Y, Z)")`) used by tests, docs and callers without an AST.

use std::fmt;

use crate::error::LogicError;

/// An argument of an atom.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Term {
    /// A variable (`X`); bound by the positive body atoms it occurs in.
    Var(String),
    /// A symbol constant (`alice`); interned by the engine.
    Sym(String),
    /// An integer constant.
    Int(i64),
    /// `_`: matches anything, binds nothing; each occurrence is independent.
    Wildcard,
}

impl Term {
    pub fn var(name: &str) -> Term {
        Term::Var(name.to_string())
    }

    pub fn sym(name: &str) -> Term {
        Term::Sym(name.to_string())
    }

    pub(crate) fn var_name(&self) -> Option<&str> {
        match self {
            Term::Var(v) => Some(v),
            _ => None,
        }
    }
}

/// `Relation(t1, ..., tn)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Atom {
    pub relation: String,
    pub args: Vec<Term>,
}

impl Atom {
    pub fn new(relation: &str, args: Vec<Term>) -> Atom {
        Atom {
            relation: relation.to_string(),
            args,
        }
    }

    /// Parses `Name(t1, ..., tn)` with the conventions of [`Rule::parse`].
    pub fn parse(text: &str) -> Result<Atom, LogicError> {
        let mut p = Parser::new(text);
        let atom = p.atom()?;
        p.end()?;
        Ok(atom)
    }

    /// Whether the atom has no variables and no wildcards.
    pub fn is_ground(&self) -> bool {
        self.args
            .iter()
            .all(|t| matches!(t, Term::Sym(_) | Term::Int(_)))
    }

    /// The distinct variables of the atom in order of first occurrence.
    pub fn variables(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in &self.args {
            if let Term::Var(v) = t
                && !out.contains(v)
            {
                out.push(v.clone());
            }
        }
        out
    }
}

/// A comparison operator of a body constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// One element of a rule body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Literal {
    Pos(Atom),
    /// `not Atom`: true when no tuple matches (its variables must be bound by positive atoms).
    Neg(Atom),
    /// `left op right` between bound variables or constants.
    Cmp(Term, CmpOp, Term),
}

/// `head <- body`. An empty body makes a fact (the head must then be ground).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub head: Atom,
    pub body: Vec<Literal>,
}

impl Rule {
    pub fn new(head: Atom, body: Vec<Literal>) -> Rule {
        Rule { head, body }
    }

    /// Parses `Head(...) <- A(...), not B(...), X != Y` (`:-` also accepted). Variables start with an
    /// upper-case letter (or `_` followed by more characters), `_` alone is a wildcard, integers are
    /// integers, quoted strings and lower-case names are symbols; `not` or `!` negates an atom.
    pub fn parse(text: &str) -> Result<Rule, LogicError> {
        let mut p = Parser::new(text);
        let head = p.atom()?;
        p.skip_ws();
        let mut body = Vec::new();
        if p.eat("<-") || p.eat(":-") {
            loop {
                body.push(p.literal()?);
                p.skip_ws();
                if !p.eat(",") {
                    break;
                }
            }
        }
        p.skip_ws();
        p.eat(".");
        p.end()?;
        Ok(Rule { head, body })
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Var(v) => write!(f, "{v}"),
            Term::Sym(s) => {
                let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if plain {
                    write!(f, "{s}")
                } else {
                    write!(f, "{s:?}")
                }
            }
            Term::Int(i) => write!(f, "{i}"),
            Term::Wildcard => write!(f, "_"),
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.relation)?;
        for (i, t) in self.args.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{t}")?;
        }
        write!(f, ")")
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Pos(a) => write!(f, "{a}"),
            Literal::Neg(a) => write!(f, "not {a}"),
            Literal::Cmp(l, op, r) => write!(f, "{l} {} {r}", op.symbol()),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.head)?;
        for (i, l) in self.body.iter().enumerate() {
            write!(f, "{}{l}", if i == 0 { " <- " } else { ", " })?;
        }
        Ok(())
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn error(&self, what: &str) -> LogicError {
        LogicError::Parse(format!(
            "{what} at column {} of `{}`",
            self.pos + 1,
            self.text
        ))
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn end(&mut self) -> Result<(), LogicError> {
        self.skip_ws();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(self.error("unexpected text"))
        }
    }

    fn ident(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
            .map_or(rest.len(), |(i, _)| i);
        if len == 0 || rest.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        self.pos += len;
        Some(&rest[..len])
    }

    fn atom(&mut self) -> Result<Atom, LogicError> {
        let name = self
            .ident()
            .ok_or_else(|| self.error("expected a relation name"))?;
        if !self.eat("(") {
            return Err(self.error("expected `(`"));
        }
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.term()?);
                if self.eat(")") {
                    break;
                }
                if !self.eat(",") {
                    return Err(self.error("expected `,` or `)`"));
                }
            }
        }
        Ok(Atom::new(name, args))
    }

    fn term(&mut self) -> Result<Term, LogicError> {
        self.skip_ws();
        let rest = self.rest();
        if let Some(stripped) = rest.strip_prefix('"') {
            let close = stripped
                .find('"')
                .ok_or_else(|| self.error("unterminated string"))?;
            self.pos += close + 2;
            return Ok(Term::Sym(stripped[..close].to_string()));
        }
        let digits = rest.starts_with(|c: char| c.is_ascii_digit())
            || (rest.starts_with('-') && rest[1..].starts_with(|c: char| c.is_ascii_digit()));
        if digits {
            let len = 1 + rest[1..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - 1);
            let n: i64 = rest[..len]
                .parse()
                .map_err(|_| self.error("integer out of range"))?;
            self.pos += len;
            return Ok(Term::Int(n));
        }
        let name = self.ident().ok_or_else(|| self.error("expected a term"))?;
        Ok(classify_name(name))
    }

    fn literal(&mut self) -> Result<Literal, LogicError> {
        self.skip_ws();
        let save = self.pos;
        if self.eat("!") && !self.rest().starts_with('=') {
            return Ok(Literal::Neg(self.atom()?));
        }
        self.pos = save;
        if let Some(word) = self.ident() {
            if word == "not" {
                return Ok(Literal::Neg(self.atom()?));
            }
            self.skip_ws();
            if self.rest().starts_with('(') {
                self.pos = save;
                return Ok(Literal::Pos(self.atom()?));
            }
        }
        self.pos = save;
        let left = self.term()?;
        let op = [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
            ("=", CmpOp::Eq),
        ]
        .into_iter()
        .find(|(s, _)| self.eat(s))
        .map(|(_, op)| op)
        .ok_or_else(|| self.error("expected an atom or a comparison"))?;
        let right = self.term()?;
        Ok(Literal::Cmp(left, op, right))
    }
}

/// The Datalog naming convention: `_` is a wildcard, upper-case (or `_x`) names are variables, the rest
/// are symbols.
pub fn classify_name(name: &str) -> Term {
    if name == "_" {
        Term::Wildcard
    } else if name.starts_with(|c: char| c.is_uppercase() || c == '_') {
        Term::Var(name.to_string())
    } else {
        Term::Sym(name.to_string())
    }
}
