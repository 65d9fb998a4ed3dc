//! Shared helpers for the parser tests: parsing from a string, and a compact S-expression
//! form of the AST so tests can state the exact tree in one line.

#![allow(dead_code)]

use tl_syntax::ast::*;
use tl_syntax::{Diagnostic, SourceMap};

pub fn parse_ok(text: &str) -> Program {
    let sources = SourceMap::new();
    let file = sources.add("test.tl", text);
    match tl_syntax::parse(&sources, file) {
        Ok(p) => p,
        Err(errors) => {
            let rendered: Vec<String> = errors.iter().map(|d| d.render(&sources)).collect();
            panic!(
                "unexpected parse errors for {text:?}:\n{}",
                rendered.join("\n")
            );
        }
    }
}

/// Parses text that must fail; returns the sources (for rendering) and the diagnostics.
pub fn parse_err(text: &str) -> (SourceMap, Vec<Diagnostic>) {
    let sources = SourceMap::new();
    let file = sources.add("test.tl", text);
    match tl_syntax::parse(&sources, file) {
        Ok(p) => panic!("expected parse errors for {text:?}, got {p:?}"),
        Err(errors) => (sources, errors),
    }
}

/// Each diagnostic as `line:col: message`.
pub fn errors(text: &str) -> Vec<String> {
    let (sources, diags) = parse_err(text);
    diags
        .iter()
        .map(|d| {
            let loc = d.location(&sources).unwrap_or_default();
            let loc = loc.strip_prefix("test.tl:").unwrap_or(&loc).to_string();
            format!("{loc}: {}", d.message)
        })
        .collect()
}

/// The S-expression form of every item, one per line.
pub fn sexpr(text: &str) -> String {
    let program = parse_ok(text);
    program
        .items
        .iter()
        .map(item)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The S-expression of a single expression (parsed as an expression statement).
pub fn expr_sexpr(text: &str) -> String {
    let program = parse_ok(text);
    assert_eq!(program.items.len(), 1, "{text:?}");
    match &program.items[0].kind {
        ItemKind::Stmt(Stmt {
            kind: StmtKind::Expr(e),
            ..
        }) => expr(e),
        other => panic!("not an expression statement: {other:?}"),
    }
}

pub fn item(i: &Item) -> String {
    match &i.kind {
        ItemKind::Import(p) => format!("(import {p:?})"),
        ItemKind::TensorDecl(t) => {
            let mut s = format!("(tensor {} {}", t.name, tensor_type(&t.ty));
            match t.role {
                Some(TensorRole::Learnable) => s.push_str(" learnable"),
                Some(TensorRole::Frozen) => s.push_str(" frozen"),
                None => {}
            }
            if let Some(e) = &t.init {
                s.push_str(&format!(" = {}", expr(e)));
            }
            s + ")"
        }
        ItemKind::Relation(r) => {
            let mut s = format!("(relation {} ({})", r.name, params(&r.params));
            if let Some(t) = &r.embed {
                s.push_str(&format!(" embed {}", tensor_type(t)));
            }
            s + ")"
        }
        ItemKind::Embedding(e) => {
            let entities = match &e.entities {
                Some(list) => format!("{{{}}}", list.join(" ")),
                None => "auto".to_string(),
            };
            let init = e.init.as_deref().unwrap_or("_");
            format!(
                "(embedding {} {} {} {})",
                e.name, entities, e.dimension, init
            )
        }
        ItemKind::Rule(r) => rule(r),
        ItemKind::Fn(f) => fn_decl(f),
        ItemKind::Struct(s) => format!("(struct {} ({}))", s.name, params(&s.fields)),
        ItemKind::Impl(i) => format!(
            "(impl {} {})",
            i.type_name,
            i.methods.iter().map(fn_decl).collect::<Vec<_>>().join(" ")
        ),
        ItemKind::Main(b) => format!("(main {})", block(b)),
        ItemKind::Test { name, body } => format!("(test {name} {})", block(body)),
        ItemKind::Bench { name, body } => format!("(bench {name} {})", block(body)),
        ItemKind::Stmt(s) => stmt(s),
    }
}

fn fn_decl(f: &FnDecl) -> String {
    let ret = match &f.ret {
        Some(t) => format!(" -> {}", type_expr(t)),
        None => String::new(),
    };
    format!(
        "(fn {} ({}){} {})",
        f.name,
        params(&f.params),
        ret,
        block(&f.body)
    )
}

fn params(ps: &[Param]) -> String {
    ps.iter()
        .map(|p| match &p.ty {
            Some(t) => format!("{}: {}", p.name, type_expr(t)),
            None => p.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn type_expr(t: &TypeExpr) -> String {
    match t {
        TypeExpr::Tensor(t) => tensor_type(t),
        TypeExpr::Named(n) => n.clone(),
    }
}

fn tensor_type(t: &TensorType) -> String {
    let dims: Vec<String> = t
        .dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Named(n) => n.clone(),
            Dim::Any => "?".to_string(),
        })
        .collect();
    format!("{}[{}]", t.dtype, dims.join(","))
}

pub fn block(b: &Block) -> String {
    format!(
        "{{{}}}",
        b.stmts.iter().map(stmt).collect::<Vec<_>>().join("; ")
    )
}

fn assign_op(op: AssignOp) -> &'static str {
    match op {
        AssignOp::Assign => "=",
        AssignOp::Bind => ":=",
        AssignOp::AddAssign => "+=",
        AssignOp::SubAssign => "-=",
        AssignOp::MulAssign => "*=",
        AssignOp::DivAssign => "/=",
        AssignOp::MaxAssign => "max=",
        AssignOp::AvgAssign => "avg=",
    }
}

pub fn stmt(s: &Stmt) -> String {
    match &s.kind {
        StmtKind::Let { name, ty, value } => match ty {
            Some(t) => format!("(let {name}: {} {})", type_expr(t), expr(value)),
            None => format!("(let {name} {})", expr(value)),
        },
        StmtKind::Assign { target, op, value } => {
            format!("({} {} {})", assign_op(*op), expr(target), expr(value))
        }
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => match otherwise {
            Some(o) => format!("(if {} {} else {})", expr(cond), block(then), block(o)),
            None => format!("(if {} {})", expr(cond), block(then)),
        },
        StmtKind::For { var, iter, body } => {
            format!("(for {var} {} {})", expr(iter), block(body))
        }
        StmtKind::While { cond, body } => format!("(while {} {})", expr(cond), block(body)),
        StmtKind::Break => "break".to_string(),
        StmtKind::Continue => "continue".to_string(),
        StmtKind::Return(None) => "(return)".to_string(),
        StmtKind::Return(Some(e)) => format!("(return {})", expr(e)),
        StmtKind::Block(b) => block(b),
        StmtKind::Query { atom: a, condition } => match condition {
            Some(c) => format!("(query {} where {})", atom(a), expr(c)),
            None => format!("(query {})", atom(a)),
        },
        StmtKind::TensorQuery(e) => format!("(? {})", expr(e)),
        StmtKind::Infer { direction, atom: a } => {
            let d = match direction {
                InferDirection::Forward => "forward",
                InferDirection::Backward => "backward",
            };
            format!("(infer {d} {})", atom(a))
        }
        StmtKind::Learn { body, settings } => {
            let mut parts: Vec<String> = body.iter().map(stmt).collect();
            parts.extend(settings.iter().map(|(k, v)| format!("{k}: {}", expr(v))));
            format!("(learn {})", parts.join("; "))
        }
        StmtKind::Rule(r) => rule(r),
        StmtKind::Expr(e) => expr(e),
    }
}

fn rule(r: &Rule) -> String {
    let body: Vec<String> = r
        .body
        .iter()
        .map(|l| match l {
            BodyLiteral::Atom { negated, atom: a } => {
                if *negated {
                    format!("not {}", atom(a))
                } else {
                    atom(a)
                }
            }
            BodyLiteral::Compare(e) => expr(e),
        })
        .collect();
    format!("(rule {} <- {})", atom(&r.head), body.join(", "))
}

pub fn atom(a: &Atom) -> String {
    let terms: Vec<String> = a
        .args
        .iter()
        .map(|t| match t {
            Term::Var(v) => format!("${v}"),
            Term::Symbol(s) => s.clone(),
            Term::Int(i) => i.to_string(),
            Term::Str(s) => format!("{s:?}"),
            Term::Wildcard => "_".to_string(),
        })
        .collect();
    format!("{}({})", a.name, terms.join(", "))
}

fn args(a: &[Arg]) -> String {
    a.iter()
        .map(|a| match &a.name {
            Some(n) => format!(" {n}:{}", expr(&a.value)),
            None => format!(" {}", expr(&a.value)),
        })
        .collect()
}

fn unary(op: UnaryOp) -> &'static str {
    match op {
        UnaryOp::Neg => "neg",
        UnaryOp::Not => "not",
    }
}

fn opt(e: &Option<Expr>) -> String {
    e.as_ref().map_or("_".to_string(), expr)
}

pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(v) => v.to_string(),
        ExprKind::Float(v) => format!("{v:?}"),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Array(items) => {
            format!("[{}]", items.iter().map(expr).collect::<Vec<_>>().join(" "))
        }
        ExprKind::Name(n) => n.clone(),
        ExprKind::Path { ty, name } => format!("{ty}::{name}"),
        ExprKind::Unary { op, expr: x } => format!("({} {})", unary(*op), expr(x)),
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", op.symbol(), expr(lhs), expr(rhs))
        }
        ExprKind::Call { callee, args: a } => format!("(call {}{})", expr(callee), args(a)),
        ExprKind::MethodCall {
            receiver,
            method,
            args: a,
        } => format!("(.{method} {}{})", expr(receiver), args(a)),
        ExprKind::Index { base, indices } => {
            let idx: Vec<String> = indices
                .iter()
                .map(|i| match i {
                    IndexArg::Expr(e) => expr(e),
                    IndexArg::Slice { start, end, step } => {
                        format!("(: {} {} {})", opt(start), opt(end), opt(step))
                    }
                    IndexArg::Normalized(n) => format!("{n}."),
                    IndexArg::Virtual(n, 0) => format!("*{n}"),
                    IndexArg::Virtual(n, k) => format!("*{n}{k:+}"),
                })
                .collect();
            format!("(idx {} {})", expr(base), idx.join(" "))
        }
        ExprKind::Member { base, name } => format!("(. {} {name})", expr(base)),
        ExprKind::Cast { expr: x, target } => {
            let t = match target {
                CastTarget::Int => "int",
                CastTarget::Float => "float",
                CastTarget::Bool => "bool",
                CastTarget::Str => "str",
            };
            format!("(as {} {t})", expr(x))
        }
        ExprKind::StructLit { name, fields } => {
            let f: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!(" {k}:{}", expr(v)))
                .collect();
            format!("(struct {name}{})", f.concat())
        }
    }
}
