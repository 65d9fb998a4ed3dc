//! Logic programming: relation declarations, facts, Datalog rules, queries and `infer`, run by the
//! interpreter's [`tl_logic::Engine`] (one per interpreter, so the REPL keeps its facts and rules).
//!
//! Order: declarations, facts and rules take effect when the statement that states them runs, and a
//! query answers from everything stated before it. In a file without `main` that is file order (an
//! import's statements come where the import is); with `main`, every top-level fact and rule is in
//! place before `main` runs. The engine recomputes derived tuples when facts or rules are added after a
//! query, so a later query sees the new ones.
//!
//! Conversion from the syntax tree: atom arguments are terms (`X` variable, `alice` or `"alice"`
//! symbol, `42` integer, `_` wildcard); a rule's comparisons (`X != Y`) become comparison literals;
//! a query's `where` clause is a conjunction (`and` or `&&`) of comparisons, atoms
//! and `not` atoms. A fact's arguments may also be host values: a name bound to an integer or a
//! string, or an expression giving one (`Edge(i, i + 1)` in a loop).

use tl_logic::{Atom, CmpOp, Engine, Literal, LogicError, Rule, Term};
use tl_syntax::Span;
use tl_syntax::ast::{
    self, Arg, BinaryOp, BodyLiteral, Expr, ExprKind, InferDirection, RelationDecl, TypeExpr,
    UnaryOp,
};

use crate::error::{Result, RuntimeError};
use crate::interp::Interpreter;
use crate::value::Value;

/// An engine error as a diagnostic at the statement that triggered it.
fn logic_error(e: LogicError, span: Span) -> RuntimeError {
    let err = RuntimeError::new(e.to_string(), span);
    match e {
        LogicError::Unstratifiable { .. } => err.with_note(
            "negation must not go through recursion: a relation cannot depend on `not` of itself",
        ),
        LogicError::UnsafeVariable { .. } => err.with_note(
            "every variable of the head, of a `not` atom or of a comparison must appear in a positive body atom",
        ),
        _ => err,
    }
}

/// A syntax-tree term as an engine term.
pub(crate) fn convert_term(t: &ast::Term) -> Term {
    match t {
        ast::Term::Var(v) => Term::Var(v.clone()),
        ast::Term::Symbol(s) | ast::Term::Str(s) => Term::Sym(s.clone()),
        ast::Term::Int(i) => Term::Int(*i),
        ast::Term::Wildcard => Term::Wildcard,
    }
}

pub(crate) fn convert_atom(a: &ast::Atom) -> Atom {
    Atom::new(&a.name, a.args.iter().map(convert_term).collect())
}

/// A comparison operand: a name (variable, symbol or `_` by the Datalog convention), an integer
/// (possibly negated) or a string.
fn operand(e: &Expr) -> Result<Term> {
    match &e.kind {
        ExprKind::Name(n) => Ok(tl_logic::classify_name(n)),
        ExprKind::Int(i) => Ok(Term::Int(*i)),
        ExprKind::Str(s) => Ok(Term::Sym(s.clone())),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            expr,
        } => match &expr.kind {
            ExprKind::Int(i) => Ok(Term::Int(-*i)),
            _ => Err(not_a_term(e)),
        },
        _ => Err(not_a_term(e)),
    }
}

fn not_a_term(e: &Expr) -> RuntimeError {
    RuntimeError::new(
        "expected a logic term here: a variable (`X`), a symbol (`alice` or \"alice\") or an integer",
        e.span,
    )
}

fn cmp_op(op: BinaryOp) -> Option<CmpOp> {
    Some(match op {
        BinaryOp::Eq => CmpOp::Eq,
        BinaryOp::Ne => CmpOp::Ne,
        BinaryOp::Lt => CmpOp::Lt,
        BinaryOp::Le => CmpOp::Le,
        BinaryOp::Gt => CmpOp::Gt,
        BinaryOp::Ge => CmpOp::Ge,
        _ => return None,
    })
}

/// An atom written as a call in an expression (`Parent(X, Y)` in a `where` clause).
fn call_atom(callee: &Expr, args: &[Arg]) -> Result<Atom> {
    let ExprKind::Name(name) = &callee.kind else {
        return Err(RuntimeError::new("expected a relation name", callee.span));
    };
    let mut terms = Vec::with_capacity(args.len());
    for a in args {
        if a.name.is_some() {
            return Err(RuntimeError::new(
                "an atom takes no named arguments",
                a.span,
            ));
        }
        terms.push(operand(&a.value)?);
    }
    Ok(Atom::new(name, terms))
}

/// The literals of a condition: `A and B`, comparisons, atoms, `not` atoms.
pub(crate) fn condition_literals(e: &Expr, out: &mut Vec<Literal>) -> Result<()> {
    match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => {
            condition_literals(lhs, out)?;
            condition_literals(rhs, out)
        }
        ExprKind::Binary { op, lhs, rhs } => match cmp_op(*op) {
            Some(op) => {
                out.push(Literal::Cmp(operand(lhs)?, op, operand(rhs)?));
                Ok(())
            }
            None => Err(RuntimeError::new(
                "expected a comparison (`X != Y`, `X < 3`), an atom or `not` an atom",
                e.span,
            )),
        },
        ExprKind::Call { callee, args } => {
            out.push(Literal::Pos(call_atom(callee, args)?));
            Ok(())
        }
        ExprKind::Unary {
            op: UnaryOp::Not,
            expr,
        } => match &expr.kind {
            ExprKind::Call { callee, args } => {
                out.push(Literal::Neg(call_atom(callee, args)?));
                Ok(())
            }
            _ => Err(RuntimeError::new("`not` applies to an atom here", e.span)),
        },
        _ => Err(RuntimeError::new(
            "expected a comparison (`X != Y`, `X < 3`), an atom or `not` an atom",
            e.span,
        )),
    }
}

/// A syntax-tree rule as an engine rule; the error points at the offending part.
pub(crate) fn convert_rule(rule: &ast::Rule) -> Result<Rule> {
    let head = convert_atom(&rule.head);
    let mut body = Vec::with_capacity(rule.body.len());
    for lit in &rule.body {
        match lit {
            BodyLiteral::Atom {
                negated: false,
                atom,
            } => body.push(Literal::Pos(convert_atom(atom))),
            BodyLiteral::Atom {
                negated: true,
                atom,
            } => body.push(Literal::Neg(convert_atom(atom))),
            BodyLiteral::Compare(e) => condition_literals(e, &mut body)?,
        }
    }
    Ok(Rule::new(head, body))
}

/// The column types of a relation declaration: a named type (`Person`, `int`) or none.
fn column_types(decl: &RelationDecl) -> Vec<Option<&str>> {
    decl.params
        .iter()
        .map(|p| match &p.ty {
            Some(TypeExpr::Named(n)) => Some(n.as_str()),
            Some(TypeExpr::Tensor(t)) => Some(t.dtype.as_str()),
            None => None,
        })
        .collect()
}

/// The atom with each wildcard replaced by a fresh variable, so every answer names a ground atom.
fn without_wildcards(atom: &Atom) -> Atom {
    let mut fresh = 0;
    let args = atom
        .args
        .iter()
        .map(|t| match t {
            Term::Wildcard => {
                fresh += 1;
                Term::Var(format!("_any{fresh}"))
            }
            other => other.clone(),
        })
        .collect();
    Atom {
        relation: atom.relation.clone(),
        args,
    }
}

fn value_term(engine: &Engine, v: tl_logic::Value) -> Term {
    match v {
        tl_logic::Value::Int(i) => Term::Int(i),
        tl_logic::Value::Sym(s) => Term::Sym(engine.symbol_name(s).to_string()),
    }
}

fn indent(text: &str, pad: &str) -> String {
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// How a query is answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `query`, `Atom?`: forward chaining of what the goal needs.
    Query,
    /// `infer forward`: the whole program to its fixed point first.
    Forward,
    /// `infer backward`: goal-directed (magic sets).
    Backward,
}

impl Interpreter {
    /// How the logic engine evaluates strata from now on (`tl run --logic-tensors`).
    pub fn set_logic_tensor_mode(&mut self, mode: tl_logic::TensorMode) {
        self.logic.set_tensor_mode(mode);
    }

    /// `relation Name(x: T, ...)`.
    pub(crate) fn exec_relation_decl(&mut self, decl: &RelationDecl, span: Span) -> Result<()> {
        if let Some(ty) = &decl.embed {
            self.declare_relation_embedding(decl, ty)?;
        }
        self.relations.insert(decl.name.clone());
        let types = column_types(decl);
        self.logic
            .declare_typed(&decl.name, &types)
            .map_err(|e| logic_error(e, span))
    }

    /// A rule statement or top-level rule.
    pub(crate) fn exec_logic_rule(&mut self, rule: &ast::Rule, span: Span) -> Result<()> {
        let converted = convert_rule(rule)?;
        self.logic
            .add_rule(converted)
            .map_err(|e| logic_error(e, span))?;
        // Report negation through recursion at the rule that closes the cycle. Relations not yet
        // given facts or rules stop the check here; the query that needs them reports it then.
        match self.logic.stratify() {
            Err(e @ LogicError::Unstratifiable { .. }) => Err(logic_error(e, span)),
            _ => Ok(()),
        }
    }

    /// A fact statement `Parent(alice, bob)`; `e` is a call whose callee names no function.
    pub(crate) fn exec_fact(&mut self, e: &Expr) -> Result<()> {
        let ExprKind::Call { callee, args } = &e.kind else {
            return Err(RuntimeError::new(
                "expected a fact such as `Parent(alice, bob)`",
                e.span,
            ));
        };
        let ExprKind::Name(name) = &callee.kind else {
            return Err(RuntimeError::new("expected a relation name", callee.span));
        };
        let mut terms = Vec::with_capacity(args.len());
        for a in args {
            if a.name.is_some() {
                return Err(RuntimeError::new("a fact takes no named arguments", a.span));
            }
            terms.push(self.fact_term(&a.value)?);
        }
        let atom = Atom::new(name, terms);
        self.logic
            .add_fact_atom(&atom)
            .map(|_| ())
            .map_err(|err| logic_error(err, e.span))
    }

    /// A fact argument: a symbol name, a name bound to an integer or string, or an expression
    /// giving one.
    fn fact_term(&mut self, e: &Expr) -> Result<Term> {
        if let ExprKind::Name(n) = &e.kind {
            match self.lookup_var(n) {
                Some(Value::Int(i)) => return Ok(Term::Int(*i)),
                Some(Value::Str(s)) => return Ok(Term::Sym(s.to_string())),
                Some(other) => {
                    return Err(RuntimeError::new(
                        format!(
                            "a fact's argument must be a symbol, a string or an integer; `{n}` is bound to {}",
                            super::stmt::describe_kind(other)
                        ),
                        e.span,
                    ));
                }
                None => {
                    return match tl_logic::classify_name(n) {
                        Term::Sym(s) => Ok(Term::Sym(s)),
                        _ => Err(RuntimeError::new(
                            format!(
                                "a fact must be ground: `{n}` is a variable (variables start with an upper-case letter or `_`)"
                            ),
                            e.span,
                        )),
                    };
                }
            }
        }
        if let Ok(t) = operand(e)
            && !matches!(t, Term::Var(_) | Term::Wildcard)
        {
            return Ok(t);
        }
        match self.eval(e)? {
            Value::Int(i) => Ok(Term::Int(i)),
            Value::Str(s) => Ok(Term::Sym(s.to_string())),
            _ => Err(RuntimeError::new(
                "a fact's argument must be a symbol, a string or an integer",
                e.span,
            )),
        }
    }

    /// `query Atom where ...` and `Atom?`.
    pub(crate) fn exec_logic_query(
        &mut self,
        atom: &ast::Atom,
        condition: Option<&Expr>,
        span: Span,
    ) -> Result<()> {
        let mut extra = Vec::new();
        if let Some(c) = condition {
            condition_literals(c, &mut extra)?;
        }
        self.answer(&convert_atom(atom), &extra, Mode::Query, span)
    }

    /// `infer forward Atom?` / `infer backward Atom?`.
    pub(crate) fn exec_infer(
        &mut self,
        direction: InferDirection,
        atom: &ast::Atom,
        span: Span,
    ) -> Result<()> {
        let mode = match direction {
            InferDirection::Forward => Mode::Forward,
            InferDirection::Backward => Mode::Backward,
        };
        self.answer(&convert_atom(atom), &[], mode, span)
    }

    /// Answers a goal, prints the table (or true/false), and with `--explain` a derivation of
    /// each answer under it.
    fn answer(&mut self, goal: &Atom, extra: &[Literal], mode: Mode, span: Span) -> Result<()> {
        let answers = match mode {
            Mode::Query => self.logic.query_where(goal, extra),
            Mode::Forward => self
                .logic
                .run_forward()
                .and_then(|()| self.logic.query(goal)),
            Mode::Backward => self.logic.query_backward(goal),
        }
        .map_err(|e| logic_error(e, span))?;
        let mut text = answers.to_string();
        if self.options.explain && answers.holds() {
            text.push_str(
                &self
                    .explanations(goal, extra)
                    .map_err(|e| logic_error(e, span))?,
            );
        }
        self.write_output(&text)
    }

    /// The derivation of every ground instance of `goal` that answers it.
    fn explanations(
        &mut self,
        goal: &Atom,
        extra: &[Literal],
    ) -> std::result::Result<String, LogicError> {
        let full = without_wildcards(goal);
        let rows = self.logic.query_where(&full, extra)?;
        let columns = rows.columns.clone();
        let mut out = String::new();
        for row in &rows.rows {
            let args = full
                .args
                .iter()
                .map(|t| match t {
                    Term::Var(v) => columns
                        .iter()
                        .position(|c| c == v)
                        .map(|i| value_term(&self.logic, row[i]))
                        .unwrap_or(Term::Wildcard),
                    other => other.clone(),
                })
                .collect();
            let ground = Atom {
                relation: full.relation.clone(),
                args,
            };
            out.push_str(&format!("why {ground}:\n"));
            match self.logic.explain(&ground)? {
                Some(d) => out.push_str(&indent(&d.to_string(), "  ")),
                None => out.push_str("  (no derivation found)\n"),
            }
        }
        Ok(out)
    }
}

impl Interpreter {
    /// `Head(x, z) = step(A(x, y) B(y, z) + C(x, z))`: the paper's equation form of rules. Each
    /// summand (a product of atoms, juxtaposed or joined with `*`) is one rule for the head; `step`
    /// around the whole right side is optional (a relation is Boolean either way). Bare names are
    /// index variables whatever their case, unless bound in scope to an integer or a string.
    pub(crate) fn exec_relation_equation(
        &mut self,
        target: &Expr,
        op: ast::AssignOp,
        value: &Expr,
        span: Span,
    ) -> Result<()> {
        if op != ast::AssignOp::Assign {
            return Err(RuntimeError::new(
                "a relation equation is written `Head(x, y) = ...` (a union of rules)",
                span,
            ));
        }
        let ExprKind::Call { callee, args } = &target.kind else {
            return Err(RuntimeError::new("expected a relation head", target.span));
        };
        let head = self.equation_atom(callee, args)?;
        let mut body = value;
        if let ExprKind::Call { callee, args } = &value.kind
            && matches!(&callee.kind, ExprKind::Name(n) if n == "step")
            && args.len() == 1
            && args[0].name.is_none()
        {
            body = &args[0].value;
        }
        let mut summands = Vec::new();
        split_binary(body, BinaryOp::Add, &mut summands);
        let mut rules = Vec::with_capacity(summands.len());
        for summand in summands {
            let mut factors = Vec::new();
            split_binary(summand, BinaryOp::Mul, &mut factors);
            let mut literals = Vec::with_capacity(factors.len());
            for f in factors {
                let ExprKind::Call { callee, args } = &f.kind else {
                    return Err(RuntimeError::new(
                        "a relation equation joins relation atoms such as `Parent(x, y)`",
                        f.span,
                    ));
                };
                literals.push(Literal::Pos(self.equation_atom(callee, args)?));
            }
            rules.push(Rule::new(head.clone(), literals));
        }
        for rule in rules {
            self.logic
                .add_rule(rule)
                .map_err(|e| logic_error(e, span))?;
        }
        match self.logic.stratify() {
            Err(e @ LogicError::Unstratifiable { .. }) => Err(logic_error(e, span)),
            _ => Ok(()),
        }
    }

    /// An atom of the equation form: `Name(x, "sym", 3, k)` with `k` bound to a host value.
    fn equation_atom(&mut self, callee: &Expr, args: &[Arg]) -> Result<Atom> {
        let ExprKind::Name(name) = &callee.kind else {
            return Err(RuntimeError::new("expected a relation name", callee.span));
        };
        if self.is_bound_name(name) {
            return Err(RuntimeError::new(
                format!("`{name}` is not a relation: a relation equation joins relation atoms"),
                callee.span,
            ));
        }
        let mut terms = Vec::with_capacity(args.len());
        for a in args {
            if a.name.is_some() {
                return Err(RuntimeError::new(
                    "an atom takes no named arguments",
                    a.span,
                ));
            }
            let term = match &a.value.kind {
                ExprKind::Name(n) if n == "_" => Term::Wildcard,
                ExprKind::Name(n) => match self.lookup_var(n) {
                    Some(Value::Int(i)) => Term::Int(*i),
                    Some(Value::Str(s)) => Term::Sym(s.to_string()),
                    _ => Term::Var(n.clone()),
                },
                _ => operand(&a.value)?,
            };
            terms.push(term);
        }
        Ok(Atom::new(name, terms))
    }
}

/// The operands of a left-nested chain of `op` (`a + b + c` gives `[a, b, c]`).
fn split_binary<'e>(e: &'e Expr, op: BinaryOp, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Binary { op: o, lhs, rhs } if *o == op => {
            split_binary(lhs, op, out);
            split_binary(rhs, op, out);
        }
        _ => out.push(e),
    }
}

/// `tl check`'s logic pass: replays declarations, rules and the arities of facts (in the order a
/// run states them: top level, then `main`, tests, benches and function bodies) into a scratch
/// engine, reporting unsafe rules, arity conflicts and negation through recursion where `tl run`
/// would. Conversion errors are the resolver's to report.
pub(crate) fn check_logic(
    interp: &Interpreter,
    program: &crate::load::LoadedProgram,
) -> Vec<tl_syntax::Diagnostic> {
    let mut checker = LogicChecker {
        interp,
        engine: Engine::new(),
        diags: Vec::new(),
    };
    for item in &program.items {
        match item {
            crate::load::TopItem::Relation(decl, span) => checker.relation(decl, *span),
            crate::load::TopItem::Stmt(stmt) => checker.stmt(stmt),
            _ => {}
        }
    }
    let bodies = program
        .main
        .iter()
        .chain(program.tests.iter().map(|t| &t.1))
        .chain(program.benches.iter().map(|b| &b.1));
    for body in bodies {
        checker.block(body);
    }
    let mut fns: Vec<_> = interp.fns.values().collect();
    fns.sort_by_key(|f| (f.decl.span.file.0, f.decl.span.start));
    for f in fns {
        checker.block(&f.decl.body);
    }
    checker.diags
}

struct LogicChecker<'a> {
    interp: &'a Interpreter,
    engine: Engine,
    diags: Vec<tl_syntax::Diagnostic>,
}

impl LogicChecker<'_> {
    fn report(&mut self, e: LogicError, span: Span) {
        self.diags.push(logic_error(e, span).to_diagnostic());
    }

    fn relation(&mut self, decl: &RelationDecl, span: Span) {
        if let Err(e) = self.engine.declare_typed(&decl.name, &column_types(decl)) {
            self.report(e, span);
        }
    }

    fn block(&mut self, block: &ast::Block) {
        for stmt in &block.stmts {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &ast::Stmt) {
        match &stmt.kind {
            ast::StmtKind::Rule(rule) => {
                let Ok(rule) = convert_rule(rule) else {
                    return;
                };
                if let Err(e) = self.engine.add_rule(rule) {
                    self.report(e, stmt.span);
                } else if let Err(e @ LogicError::Unstratifiable { .. }) = self.engine.stratify() {
                    self.report(e, stmt.span);
                }
            }
            ast::StmtKind::Expr(e) => self.fact_arity(e),
            ast::StmtKind::Query { atom, .. } | ast::StmtKind::Infer { atom, .. } => {
                self.query_arity(atom, stmt.span)
            }
            ast::StmtKind::If {
                then, otherwise, ..
            } => {
                self.block(then);
                if let Some(o) = otherwise {
                    self.block(o);
                }
            }
            ast::StmtKind::For { body, .. } | ast::StmtKind::While { body, .. } => self.block(body),
            ast::StmtKind::Block(b) => self.block(b),
            _ => {}
        }
    }

    /// A query of a relation known by now must use its arity (as the engine checks on a run).
    fn query_arity(&mut self, atom: &ast::Atom, span: Span) {
        if let Some(expected) = self.engine.arity(&atom.name)
            && expected != atom.args.len()
        {
            let e = LogicError::ArityMismatch {
                relation: atom.name.clone(),
                expected,
                found: atom.args.len(),
                context: format!("query `{}`", convert_atom(atom)),
            };
            self.report(e, span);
        }
    }

    /// A fact statement fixes its relation's arity; its values need a run, so placeholders stand in.
    fn fact_arity(&mut self, e: &Expr) {
        let ExprKind::Call { callee, args } = &e.kind else {
            return;
        };
        let ExprKind::Name(name) = &callee.kind else {
            return;
        };
        let interp = self.interp;
        let callable = interp.fns.contains_key(name)
            || crate::builtins::lookup(name).is_some()
            || interp.structs.contains_key(name);
        let relation =
            interp.relations.contains(name) || name.starts_with(|c: char| c.is_ascii_uppercase());
        if callable || !relation {
            return;
        }
        let placeholder = Atom::new(name, vec![Term::Int(0); args.len()]);
        if let Err(err) = self.engine.add_fact_atom(&placeholder) {
            self.report(err, e.span);
        }
    }
}
