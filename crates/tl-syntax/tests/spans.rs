//! Spans cover exactly the source text of their node: for every expression, statement, item,
//! atom and parameter of a realistic program, the text under the span is trimmed and, parsed
//! again on its own, gives the same tree.

mod common;

use common::{expr, item, parse_ok, stmt};
use tl_syntax::Span;
use tl_syntax::ast::*;

const PROGRAM: &str = include_str!("data/tour.tl");

fn text(span: Span) -> &'static str {
    &PROGRAM[span.start..span.end]
}

#[track_caller]
fn check_trimmed(span: Span) {
    let t = text(span);
    assert!(!t.is_empty(), "empty span {span:?}");
    assert_eq!(t, t.trim(), "span {span:?} has surrounding whitespace");
}

fn walk_expr(e: &Expr, count: &mut usize) {
    *count += 1;
    check_trimmed(e.span);
    // The text of the expression, parsed alone, is the same expression.
    let again = parse_ok(text(e.span));
    assert_eq!(again.items.len(), 1, "{:?}", text(e.span));
    let ItemKind::Stmt(Stmt {
        kind: StmtKind::Expr(alone),
        ..
    }) = &again.items[0].kind
    else {
        panic!(
            "{:?} is not an expression statement on its own",
            text(e.span)
        );
    };
    assert_eq!(expr(alone), expr(e), "span text {:?}", text(e.span));
    match &e.kind {
        ExprKind::Array(items) => items.iter().for_each(|x| walk_expr(x, count)),
        ExprKind::Unary { expr: x, .. } | ExprKind::Cast { expr: x, .. } => walk_expr(x, count),
        ExprKind::Member { base, .. } => walk_expr(base, count),
        ExprKind::Binary { lhs, rhs, .. } => {
            walk_expr(lhs, count);
            walk_expr(rhs, count);
        }
        ExprKind::Call { callee, args } => {
            walk_expr(callee, count);
            walk_args(args, count);
        }
        ExprKind::MethodCall { receiver, args, .. } => {
            walk_expr(receiver, count);
            walk_args(args, count);
        }
        ExprKind::Index { base, indices } => {
            walk_expr(base, count);
            for i in indices {
                match i {
                    IndexArg::Expr(x) => walk_expr(x, count),
                    IndexArg::Slice { start, end, step } => {
                        for x in [start, end, step].into_iter().flatten() {
                            walk_expr(x, count);
                        }
                    }
                    IndexArg::Normalized(_) | IndexArg::Virtual(..) => {}
                }
            }
        }
        ExprKind::StructLit { fields, .. } => fields.iter().for_each(|(_, x)| walk_expr(x, count)),
        _ => {}
    }
}

fn walk_args(args: &[Arg], count: &mut usize) {
    for a in args {
        check_trimmed(a.span);
        match &a.name {
            Some(n) => assert!(text(a.span).starts_with(n.as_str())),
            None => assert_eq!(a.span, a.value.span),
        }
        walk_expr(&a.value, count);
    }
}

fn walk_atom(a: &Atom) {
    check_trimmed(a.span);
    assert!(
        text(a.span).starts_with(&a.name) && text(a.span).ends_with(')'),
        "{:?}",
        text(a.span)
    );
}

fn walk_block(b: &Block, count: &mut usize) {
    check_trimmed(b.span);
    assert!(text(b.span).ends_with('}'));
    b.stmts.iter().for_each(|s| walk_stmt(s, count));
}

fn walk_stmt(s: &Stmt, count: &mut usize) {
    *count += 1;
    check_trimmed(s.span);
    // Parsed alone (at top level) the statement's text gives the same statement.
    let again = parse_ok(text(s.span));
    assert_eq!(again.items.len(), 1, "{:?}", text(s.span));
    let alone = match &again.items[0].kind {
        ItemKind::Stmt(x) => stmt(x),
        other => item(&Item {
            kind: other.clone(),
            span: again.items[0].span,
        }),
    };
    assert_eq!(alone, stmt(s), "statement text {:?}", text(s.span));
    match &s.kind {
        StmtKind::Let { value, .. } => walk_expr(value, count),
        StmtKind::Assign { target, value, .. } => {
            walk_expr(target, count);
            walk_expr(value, count);
        }
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => {
            walk_expr(cond, count);
            walk_block(then, count);
            if let Some(o) = otherwise {
                walk_block(o, count);
            }
        }
        StmtKind::For { iter, body, .. } => {
            walk_expr(iter, count);
            walk_block(body, count);
        }
        StmtKind::While { cond, body } => {
            walk_expr(cond, count);
            walk_block(body, count);
        }
        StmtKind::Return(Some(e)) | StmtKind::TensorQuery(e) | StmtKind::Expr(e) => {
            walk_expr(e, count)
        }
        StmtKind::Block(b) => walk_block(b, count),
        StmtKind::Query { atom, condition } => {
            walk_atom(atom);
            if let Some(c) = condition {
                walk_expr(c, count);
            }
        }
        StmtKind::Infer { atom, .. } => walk_atom(atom),
        StmtKind::Learn { body, settings } => {
            body.iter().for_each(|x| walk_stmt(x, count));
            settings.iter().for_each(|(_, v)| walk_expr(v, count));
        }
        StmtKind::Rule(r) => walk_rule(r, count),
        StmtKind::Break | StmtKind::Continue | StmtKind::Return(None) => {}
    }
}

fn walk_rule(r: &Rule, count: &mut usize) {
    walk_atom(&r.head);
    for l in &r.body {
        match l {
            BodyLiteral::Atom { atom, .. } => walk_atom(atom),
            BodyLiteral::Compare(e) => walk_expr(e, count),
        }
    }
}

fn walk_params(ps: &[Param]) {
    for p in ps {
        check_trimmed(p.span);
        assert!(text(p.span).starts_with(&p.name));
        if let Some(TypeExpr::Tensor(t)) = &p.ty {
            check_trimmed(t.span);
            assert!(text(p.span).ends_with(text(t.span)));
        }
    }
}

fn walk_fn(f: &FnDecl, count: &mut usize) {
    check_trimmed(f.span);
    assert!(text(f.span).starts_with("fn ") && text(f.span).ends_with('}'));
    walk_params(&f.params);
    walk_block(&f.body, count);
}

#[test]
fn every_span_covers_its_text_exactly() {
    let program = parse_ok(PROGRAM);
    let mut count = 0;
    let mut starts = Vec::new();
    for it in &program.items {
        check_trimmed(it.span);
        starts.push(
            text(it.span)
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        );
        match &it.kind {
            ItemKind::Fn(f) => walk_fn(f, &mut count),
            ItemKind::Impl(i) => i.methods.iter().for_each(|f| walk_fn(f, &mut count)),
            ItemKind::Struct(s) => walk_params(&s.fields),
            ItemKind::Relation(r) => walk_params(&r.params),
            ItemKind::TensorDecl(t) => {
                check_trimmed(t.ty.span);
                assert_eq!(text(t.ty.span), "float32[4, 4]");
                if let Some(e) = &t.init {
                    walk_expr(e, &mut count);
                }
            }
            ItemKind::Rule(r) => walk_rule(r, &mut count),
            ItemKind::Main(b) => walk_block(b, &mut count),
            ItemKind::Test { body, .. } | ItemKind::Bench { body, .. } => {
                walk_block(body, &mut count)
            }
            ItemKind::Stmt(s) => walk_stmt(s, &mut count),
            ItemKind::Import(_) | ItemKind::Embedding(_) => {}
        }
    }
    assert_eq!(
        starts,
        [
            "import",
            "tensor",
            "relation",
            "embedding",
            "struct",
            "impl",
            "fn",
            "Parent(alice,",
            "Aunt(x,",
            "rule",
            "Parent(alice,",
            "query",
            "infer",
            "Y[i,",
            "Y[i]",
            "Comp[p,",
            "Y?",
            "main",
            "test",
            "bench"
        ]
    );
    assert!(count > 150, "only {count} nodes visited");
}

#[test]
fn embedding_item_span_covers_the_braces() {
    let program = parse_ok(PROGRAM);
    let e = program
        .items
        .iter()
        .find(|i| matches!(i.kind, ItemKind::Embedding(_)))
        .expect("embedding item");
    assert!(text(e.span).starts_with("embedding E {") && text(e.span).ends_with("xavier\n}"));
}
