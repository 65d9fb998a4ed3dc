//! Every construct of the grammar, parsed and compared in S-expression form (see
//! `common/mod.rs` for the notation: `$X` is a logic variable, `(idx b i)` an index, ...).

mod common;

use common::{expr_sexpr, parse_ok, sexpr};
use tl_syntax::ast::*;

#[test]
fn literals() {
    assert_eq!(expr_sexpr("42"), "42");
    assert_eq!(expr_sexpr("1.0"), "1.0");
    assert_eq!(expr_sexpr("1e-5"), "1e-5");
    assert_eq!(expr_sexpr("2.5E+3"), "2500.0");
    assert_eq!(expr_sexpr("3e2"), "300.0");
    assert_eq!(expr_sexpr(".5"), "0.5");
    assert_eq!(expr_sexpr("1_000"), "1000");
    assert_eq!(expr_sexpr("true"), "true");
    assert_eq!(expr_sexpr("false"), "false");
    assert_eq!(expr_sexpr(r#""a\nb\t\"c\\""#), r#""a\nb\t\"c\\""#);
    assert_eq!(
        expr_sexpr("[[1.0, 2.0], [3.0, 4.0]]"),
        "[[1.0 2.0] [3.0 4.0]]"
    );
    assert_eq!(expr_sexpr("[1, 2, 3,]"), "[1 2 3]");
    assert_eq!(expr_sexpr("[]"), "[]");
    assert_eq!(expr_sexpr("[\n 1,\n 2\n]"), "[1 2]");
}

#[test]
fn string_escapes_are_decoded() {
    let p = parse_ok(r#"print("tab\there\nquote\" back\\ brace\{")"#);
    let ItemKind::Stmt(Stmt {
        kind: StmtKind::Expr(e),
        ..
    }) = &p.items[0].kind
    else {
        panic!("expected an expression statement");
    };
    let ExprKind::Call { args, .. } = &e.kind else {
        panic!("expected a call");
    };
    assert_eq!(
        args[0].value.kind,
        ExprKind::Str("tab\there\nquote\" back\\ brace{".to_string())
    );
}

#[test]
fn names_containing_keywords_are_names() {
    assert_eq!(expr_sexpr("inv_freq"), "inv_freq");
    assert_eq!(expr_sexpr("letter + break_flag"), "(+ letter break_flag)");
    assert_eq!(
        expr_sexpr("format(index, iffy, notable, android, order)"),
        "(call format index iffy notable android order)"
    );
    assert_eq!(sexpr("let format = index"), "(let format index)");
    // Contextual words are ordinary names where no declaration can start.
    assert_eq!(
        sexpr("tensor([1, 2], \"f32\")"),
        "(call tensor [1 2] \"f32\")"
    );
    assert_eq!(
        sexpr("let test = main + query + learn + rule"),
        "(let test (+ (+ (+ main query) learn) rule))"
    );
    assert_eq!(sexpr("embedding(table, ids)"), "(call embedding table ids)");
}

#[test]
fn negative_numbers_and_index_arithmetic() {
    assert_eq!(expr_sexpr("-3"), "(neg 3)");
    assert_eq!(expr_sexpr("a - -b"), "(- a (neg b))");
    assert_eq!(expr_sexpr("x[i+1]"), "(idx x (+ i 1))");
    assert_eq!(expr_sexpr("x[-1]"), "(idx x (neg 1))");
    assert_eq!(expr_sexpr("1e-5 * x"), "(* 1e-5 x)");
    assert_eq!(
        expr_sexpr("Image[x+dx, y+dy, c]"),
        "(idx Image (+ x dx) (+ y dy) c)"
    );
    assert_eq!(
        expr_sexpr("Pooled[x/2, y/2]"),
        "(idx Pooled (/ x 2) (/ y 2))"
    );
}

#[test]
fn postfix_forms() {
    assert_eq!(expr_sexpr("f(a, name: b)"), "(call f a name:b)");
    assert_eq!(
        expr_sexpr("softmax(x, dim: -1)"),
        "(call softmax x dim:(neg 1))"
    );
    assert_eq!(
        expr_sexpr("softmax(x, dim:-1)"),
        "(call softmax x dim:(neg 1))"
    );
    assert_eq!(expr_sexpr("f()"), "(call f)");
    assert_eq!(expr_sexpr("f(\n  a,\n  b,\n)"), "(call f a b)");
    assert_eq!(
        expr_sexpr("model.blk[i].attn_q.weight"),
        "(. (. (idx (. model blk) i) attn_q) weight)"
    );
    assert_eq!(expr_sexpr("cache.append(0, k, v)"), "(.append cache 0 k v)");
    assert_eq!(expr_sexpr("a.b.c(1).d"), "(. (.c (. a b) 1) d)");
    assert_eq!(expr_sexpr("x as int"), "(as x int)");
    assert_eq!(expr_sexpr("n as float / 2"), "(/ (as n float) 2)");
    assert_eq!(expr_sexpr("b as bool"), "(as b bool)");
    assert_eq!(expr_sexpr("i as str"), "(as i str)");
    assert_eq!(expr_sexpr("f16::zeros([2])"), "(call f16::zeros [2])");
    assert_eq!(
        expr_sexpr("KVCache::new_f16(22)"),
        "(call KVCache::new_f16 22)"
    );
    assert_eq!(expr_sexpr("f32::arange(n)"), "(call f32::arange n)");
    assert_eq!(expr_sexpr("(a + b)(c)"), "(call (+ a b) c)");
}

#[test]
fn index_arguments() {
    assert_eq!(
        expr_sexpr("x[i, a:b, :, ::2]"),
        "(idx x i (: a b _) (: _ _ _) (: _ _ 2))"
    );
    assert_eq!(expr_sexpr("x[a:]"), "(idx x (: a _ _))");
    assert_eq!(expr_sexpr("x[:b]"), "(idx x (: _ b _))");
    assert_eq!(expr_sexpr("x[a:b:step]"), "(idx x (: a b step))");
    assert_eq!(expr_sexpr("x[1::2]"), "(idx x (: 1 _ 2))");
    assert_eq!(expr_sexpr("x[:-1]"), "(idx x (: _ (neg 1) _))");
    assert_eq!(expr_sexpr("x[2:-1]"), "(idx x (: 2 (neg 1) _))");
    assert_eq!(expr_sexpr("x[::-1]"), "(idx x (: _ _ (neg 1)))");
    assert_eq!(expr_sexpr("X[4:8]"), "(idx X (: 4 8 _))");
    assert_eq!(expr_sexpr("Comp[p, p'.]"), "(idx Comp p p'.)");
    assert_eq!(expr_sexpr("X[*t, i]"), "(idx X *t i)");
    assert_eq!(expr_sexpr("x[*t]"), "(idx x *t)");
    assert_eq!(expr_sexpr("S[i, *t+1]"), "(idx S i *t+1)");
    assert_eq!(expr_sexpr("S[*t-2, i]"), "(idx S *t-2 i)");
    assert_eq!(expr_sexpr("A[p, p']"), "(idx A p p')");
    assert_eq!(expr_sexpr("x[a * t]"), "(idx x (* a t))");
    assert_eq!(expr_sexpr("x[i][j]"), "(idx (idx x i) j)");
}

#[test]
fn struct_literals() {
    assert_eq!(expr_sexpr("Point { x: 1, y: 2 }"), "(struct Point x:1 y:2)");
    assert_eq!(
        expr_sexpr("Point {\n  x: 1,\n  y: 2,\n}"),
        "(struct Point x:1 y:2)"
    );
    assert_eq!(expr_sexpr("Empty {}"), "(struct Empty)");
    assert_eq!(sexpr("let p = P { x: -1 }"), "(let p (struct P x:(neg 1)))");
    // Lower-case names never start one: this is a name followed by a stray block.
    assert_eq!(
        common::errors("point {}"),
        ["1:7: expected the end of the statement (a new line or `;`), found `{`"]
    );
}

#[test]
fn no_struct_literal_in_conditions() {
    assert_eq!(sexpr("if Flag { y = 1 }"), "(if Flag {(= y 1)})");
    assert_eq!(
        sexpr("while Running { y = 1 }"),
        "(while Running {(= y 1)})"
    );
    assert_eq!(
        sexpr("for p in Points { print(p) }"),
        "(for p Points {(call print p)})"
    );
    assert_eq!(
        sexpr("if f(P { x: 1 }) { y = 1 }"),
        "(if (call f (struct P x:1)) {(= y 1)})"
    );
}

#[test]
fn statements() {
    assert_eq!(sexpr("let x = 1"), "(let x 1)");
    assert_eq!(sexpr("let x: int = 1"), "(let x: int 1)");
    assert_eq!(
        sexpr("let w: float32[2, n, ?] = zeros([2, 3, 4])"),
        "(let w: float32[2,n,?] (call zeros [2 3 4]))"
    );
    assert_eq!(sexpr("x := 2"), "(:= x 2)");
    assert_eq!(sexpr("x = 3"), "(= x 3)");
    assert_eq!(
        sexpr("x += 1; x -= 2; x *= 3; x /= 4"),
        "(+= x 1)\n(-= x 2)\n(*= x 3)\n(/= x 4)"
    );
    assert_eq!(
        sexpr("Y[i, k] = relu(X[i, j] * W[j, k])"),
        "(= (idx Y i k) (call relu (* (idx X i j) (idx W j k))))"
    );
    assert_eq!(sexpr("Y[i] max= X[i, j]"), "(max= (idx Y i) (idx X i j))");
    assert_eq!(sexpr("Y[i] avg= X[i, j]"), "(avg= (idx Y i) (idx X i j))");
    assert_eq!(
        sexpr("Aunt(x, z) = step(Sister(x, y) * Parent(y, z))"),
        "(= (call Aunt x z) (call step (* (call Sister x y) (call Parent y z))))"
    );
    assert_eq!(sexpr("self.w = e"), "(= (. self w) e)");
    assert_eq!(sexpr("x[0] = 5"), "(= (idx x 0) 5)");
    assert_eq!(sexpr("T = \"file.csv\""), "(= T \"file.csv\")");
    assert_eq!(sexpr("\"out.csv\" = T"), "(= \"out.csv\" T)");
    assert_eq!(sexpr("break"), "break");
    assert_eq!(sexpr("continue"), "continue");
    assert_eq!(sexpr("return"), "(return)");
    assert_eq!(sexpr("return x + 1"), "(return (+ x 1))");
    assert_eq!(sexpr("fn f() { return }"), "(fn f () {(return)})");
    assert_eq!(
        sexpr("{ let a = 1; print(a) }"),
        "{(let a 1); (call print a)}"
    );
    assert_eq!(sexpr("print(\"x = {}\", x)"), "(call print \"x = {}\" x)");
}

#[test]
fn statement_separators_and_continuation() {
    assert_eq!(sexpr("a = 1; b = 2\nc = 3"), "(= a 1)\n(= b 2)\n(= c 3)");
    assert_eq!(sexpr("x = 1 +\n  2"), "(= x (+ 1 2))");
    assert_eq!(sexpr("x =\n  2"), "(= x 2)");
    assert_eq!(sexpr("x = a and\n b"), "(= x (and a b))");
    assert_eq!(sexpr("x = a ||\n b"), "(= x (or a b))");
    assert_eq!(sexpr("x = f(1,\n 2)"), "(= x (call f 1 2))");
    assert_eq!(sexpr("x = [1,\n\n 2]"), "(= x [1 2])");
    // A line that ends with a complete expression ends the statement.
    assert_eq!(sexpr("x = 1\n-2"), "(= x 1)\n(neg 2)");
    assert_eq!(
        sexpr("\n\n// only a comment\n\nx = 1 // trailing\n/* block\n comment */ y = 2\n"),
        "(= x 1)\n(= y 2)"
    );
    assert_eq!(
        sexpr("/* outer /* nested */ still comment */ z = 3"),
        "(= z 3)"
    );
    assert_eq!(sexpr("x = 1;;; y = 2;"), "(= x 1)\n(= y 2)");
    assert_eq!(sexpr("x = 1\r\ny = 2\r\n"), "(= x 1)\n(= y 2)");
}

#[test]
fn if_else_chains() {
    assert_eq!(sexpr("if a { x = 1 }"), "(if a {(= x 1)})");
    assert_eq!(
        sexpr("if a { x = 1 } else { x = 2 }"),
        "(if a {(= x 1)} else {(= x 2)})"
    );
    assert_eq!(
        sexpr("if a { x = 1 } else if b { x = 2 } else { x = 3 }"),
        "(if a {(= x 1)} else {(if b {(= x 2)} else {(= x 3)})})"
    );
    assert_eq!(
        sexpr("if a {\n  x = 1\n}\nelse {\n  x = 2\n}"),
        "(if a {(= x 1)} else {(= x 2)})"
    );
    // `else if` is an otherwise-block holding exactly one `if`, spanning that `if`.
    let text = "if a { } else if b { }";
    let p = parse_ok(text);
    let ItemKind::Stmt(Stmt {
        kind: StmtKind::If {
            otherwise: Some(o), ..
        },
        ..
    }) = &p.items[0].kind
    else {
        panic!("expected if");
    };
    assert_eq!(o.stmts.len(), 1);
    assert_eq!(&text[o.span.start..o.span.end], "if b { }");
}

#[test]
fn loops() {
    assert_eq!(
        sexpr("for i in range(n) { s += i }"),
        "(for i (call range n) {(+= s i)})"
    );
    assert_eq!(
        sexpr("for i in range_i(3) {\n print(i)\n}"),
        "(for i (call range_i 3) {(call print i)})"
    );
    assert_eq!(sexpr("for x in [1, 2] { }"), "(for x [1 2] {})");
    assert_eq!(
        sexpr("while i < 10 { i += 1; if i == 5 { break } }"),
        "(while (< i 10) {(+= i 1); (if (== i 5) {break})})"
    );
}

#[test]
fn logic_rules_facts_and_queries() {
    assert_eq!(
        sexpr("Aunt(x, z) <- Sister(x, y), Parent(y, z)"),
        "(rule Aunt(x, z) <- Sister(x, y), Parent(y, z))"
    );
    assert_eq!(
        sexpr("Anc(X, Y) :- Parent(X, Y)"),
        "(rule Anc($X, $Y) <- Parent($X, $Y))"
    );
    assert_eq!(
        sexpr("rule Anc(X, Y) <- Parent(X, Z),\n    Anc(Z, Y)"),
        "(rule Anc($X, $Y) <- Parent($X, $Z), Anc($Z, $Y))"
    );
    assert_eq!(
        sexpr("Lonely(X) <- Person(X), not Friend(X, _), !Pet(X, \"cat\", -1)"),
        "(rule Lonely($X) <- Person($X), not Friend($X, _), not Pet($X, \"cat\", -1))"
    );
    assert_eq!(
        sexpr("Sib(X, Y) <- Parent(P, X), Parent(P, Y), X != Y"),
        "(rule Sib($X, $Y) <- Parent($P, $X), Parent($P, $Y), (!= X Y))"
    );
    assert_eq!(sexpr("Parent(alice, bob)"), "(call Parent alice bob)");
    assert_eq!(sexpr("Parent(alice, X)?"), "(query Parent(alice, $X))");
    assert_eq!(sexpr("query Parent(alice, X)"), "(query Parent(alice, $X))");
    assert_eq!(
        sexpr("query Parent(X, Y) where X != Y"),
        "(query Parent($X, $Y) where (!= X Y))"
    );
    assert_eq!(sexpr("Age(bob, 42)?"), "(query Age(bob, 42))");
    assert_eq!(sexpr("Y?"), "(? Y)");
    assert_eq!(sexpr("Y[i]?"), "(? (idx Y i))");
    assert_eq!(
        sexpr("infer forward Ancestor(alice, X)?"),
        "(infer forward Ancestor(alice, $X))"
    );
    assert_eq!(
        sexpr("infer backward Ancestor(X, bob)?"),
        "(infer backward Ancestor($X, bob))"
    );
    assert_eq!(
        sexpr("main { Anc(X, Y) <- Parent(X, Y) }"),
        "(main {(rule Anc($X, $Y) <- Parent($X, $Y))})"
    );
}

#[test]
fn rules_at_top_level_are_rule_items() {
    let p = parse_ok("Anc(X, Y) <- Parent(X, Y)\nrule B(x) :- C(x)");
    assert!(matches!(p.items[0].kind, ItemKind::Rule(_)));
    assert!(matches!(p.items[1].kind, ItemKind::Rule(_)));
}

#[test]
fn tensor_equations_with_juxtaposition() {
    assert_eq!(
        sexpr("Y[i] = step(W[i] X[i])"),
        "(= (idx Y i) (call step (* (idx W i) (idx X i))))"
    );
    assert_eq!(
        sexpr("Aunt(x, z) = step(Sister(x, y) Parent(y, z))"),
        "(= (call Aunt x z) (call step (* (call Sister x y) (call Parent y z))))"
    );
    assert_eq!(
        sexpr("EmbR[i, j] = R(x, y) Emb[x, i] Emb[y, j]"),
        "(= (idx EmbR i j) (* (* (call R x y) (idx Emb x i)) (idx Emb y j)))"
    );
    assert_eq!(
        sexpr("Y[i] = W[i, j] X[j] + B[i]"),
        "(= (idx Y i) (+ (* (idx W i j) (idx X j)) (idx B i)))"
    );
    assert_eq!(
        sexpr("Comp[p, p'.] = softmax(Q[p, d] K[p', d])"),
        "(= (idx Comp p p'.) (call softmax (* (idx Q p d) (idx K p' d))))"
    );
    assert_eq!(
        sexpr("X[i, t+1] = sig(W[i, j] X[j, t] / T)"),
        "(= (idx X i (+ t 1)) (call sig (/ (* (idx W i j) (idx X j t)) T)))"
    );
}

#[test]
fn learn_blocks() {
    assert_eq!(
        sexpr("learn { objective: loss, optimizer: adam(lr: 0.001), epochs: 100 }"),
        "(learn objective: loss; optimizer: (call adam lr:0.001); epochs: 100)"
    );
    assert_eq!(
        sexpr(
            "learn {\n  h := W @ x\n  Y[i] = h[i]\n  objective: mse(h, y)\n  optimizer: sgd(lr: 0.1),\n  epochs: 10\n}"
        ),
        "(learn (:= h (@ W x)); (= (idx Y i) (idx h i)); objective: (call mse h y); optimizer: (call sgd lr:0.1); epochs: 10)"
    );
}

#[test]
fn items() {
    assert_eq!(sexpr("import \"lib/util.tl\""), "(import \"lib/util.tl\")");
    assert_eq!(
        sexpr("tensor W: float32[4, 4] learnable = randn([4, 4])"),
        "(tensor W float32[4,4] learnable = (call randn [4 4]))"
    );
    assert_eq!(
        sexpr("tensor E: float16[n, 8] frozen"),
        "(tensor E float16[n,8] frozen)"
    );
    assert_eq!(sexpr("tensor b: bfloat16[?]"), "(tensor b bfloat16[?])");
    assert_eq!(
        sexpr("tensor m: bool[2, 2] = x"),
        "(tensor m bool[2,2] = x)"
    );
    assert_eq!(
        sexpr("relation Parent(x: Person, y: Person)"),
        "(relation Parent (x: Person, y: Person))"
    );
    assert_eq!(
        sexpr("relation Likes(a, b) embed float32[16]"),
        "(relation Likes (a, b) embed float32[16])"
    );
    assert_eq!(
        sexpr("embedding E { entities: {a, b} dimension: 8 init: xavier }"),
        "(embedding E {a b} 8 xavier)"
    );
    assert_eq!(
        sexpr("embedding E {\n  entities: {\n    a,\n    b,\n  },\n  dimension: 8,\n}"),
        "(embedding E {a b} 8 _)"
    );
    assert_eq!(
        sexpr("embedding F { entities: auto, dimension: 4 }"),
        "(embedding F auto 4 _)"
    );
    assert_eq!(
        sexpr("fn add(a: float32[n, ?], k: int) -> float32[n] { a + k }"),
        "(fn add (a: float32[n,?], k: int) -> float32[n] {(+ a k)})"
    );
    assert_eq!(sexpr("fn f(\n  a,\n  b,\n) {\n}"), "(fn f (a, b) {})");
    assert_eq!(
        sexpr("fn g(xs: list, s: string) -> bool { true }"),
        "(fn g (xs: list, s: string) -> bool {true})"
    );
    assert_eq!(
        sexpr("struct P { x: float, y: float }"),
        "(struct P (x: float, y: float))"
    );
    assert_eq!(
        sexpr("struct Q {\n  w: float32[4]\n  name: string\n}"),
        "(struct Q (w: float32[4], name: string))"
    );
    assert_eq!(
        sexpr(
            "impl P {\n  fn new(x, y) { P { x: x, y: y } }\n\n  fn norm(self) -> float { self.x }\n}"
        ),
        "(impl P (fn new (x, y) {(struct P x:x y:y)}) (fn norm (self) -> float {(. self x)}))"
    );
    assert_eq!(sexpr("main {\n  print(1)\n}"), "(main {(call print 1)})");
    assert_eq!(
        sexpr("test adds { assert(1 + 1 == 2, \"sum\") }"),
        "(test adds {(call assert (== (+ 1 1) 2) \"sum\")})"
    );
    assert_eq!(sexpr("test \"two words\" { }"), "(test two words {})");
    assert_eq!(sexpr("bench matmul { a @ b }"), "(bench matmul {(@ a b)})");
    assert_eq!(sexpr("print(1)\nx = 2"), "(call print 1)\n(= x 2)");
}

#[test]
fn fn_decl_and_param_spans() {
    let text = "fn add(a: float32[n, ?], k: int) -> float32[n] {\n  a + k\n}\n";
    let p = parse_ok(text);
    let ItemKind::Fn(f) = &p.items[0].kind else {
        panic!("expected fn")
    };
    assert_eq!(&text[f.span.start..f.span.end], text.trim_end());
    assert_eq!(
        &text[f.params[0].span.start..f.params[0].span.end],
        "a: float32[n, ?]"
    );
    assert_eq!(
        &text[f.params[1].span.start..f.params[1].span.end],
        "k: int"
    );
    let Some(TypeExpr::Tensor(t)) = &f.params[0].ty else {
        panic!("expected tensor type")
    };
    assert_eq!(&text[t.span.start..t.span.end], "float32[n, ?]");
    assert_eq!(t.dims, vec![Dim::Named("n".into()), Dim::Any]);
    assert_eq!(&text[f.body.span.start..f.body.span.end], "{\n  a + k\n}");
}

#[test]
fn types() {
    // Dtypes with brackets are tensor types; everything else is a named type.
    assert_eq!(sexpr("let a: bool = true"), "(let a: bool true)");
    assert_eq!(sexpr("let a: bool[3] = m"), "(let a: bool[3] m)");
    assert_eq!(sexpr("let a: float32 = x"), "(let a: float32 x)");
    assert_eq!(sexpr("let a: Point = p"), "(let a: Point p)");
    assert_eq!(sexpr("let a: int64[] = s"), "(let a: int64[] s)");
}

#[test]
fn braces_on_the_next_line() {
    assert_eq!(
        sexpr("fn f(a)\n{\n  a\n}\nif x\n{\n  y = 1\n}\nelse\n{\n  y = 2\n}"),
        "(fn f (a) {a})\n(if x {(= y 1)} else {(= y 2)})"
    );
    assert_eq!(
        sexpr("while i < 3\n{ i += 1 }"),
        "(while (< i 3) {(+= i 1)})"
    );
}

/// Programs in the style of the earlier interpreter parse unchanged.
#[test]
fn compatibility_style_programs() {
    let text = r#"
fn attention(q: float16[?, ?], k: float16[?, ?], v, n: int) -> float16[?, ?] {
    let scores = q @ transpose(k, 0, 1) / sqrt(64.0)
    let masked = apply_attention_mask(scores, causal_mask(n))
    return softmax(masked, 1) @ v
}

main {
    let model = load_model("tinyllama.gguf")
    let tok = load_tokenizer("tokenizer.json")
    let cache = KVCache::new_f16(22)
    let inv_freq = 1.0 / (10000.0 ** (f32::arange(32) / 64.0))
    let ids = tokenize(tok, "Hello", true)
    let break_flag = false
    for layer in range_i(22) {
        let w = model.blk[layer].attn_q.weight
        let x = f16::zeros([1, 2048])
        cache.set(layer, x, x)
        if layer == 21 && !break_flag { break_flag = true } else if layer > 21 { break }
    }
    let logits = slice_last(model.output(x))
    let next = temperature_sample(logits, 0.8)
    ids = append(ids, next)
    print("token: {}", detokenize(tok, [next]))
    assert(len(ids) > 0, "no tokens")
    x = x[-1]
    y = x[i+1] * 1e-5 - -3
}

test "attention shapes" {
    let q = f32::ones([4, 8])
    assert(shape(attention(q, q, q, 4))[0] == 4, "rows")
}

bench decode { attention(a, b, c, 4) }
"#;
    let p = parse_ok(text);
    let kinds: Vec<&str> = p
        .items
        .iter()
        .map(|i| match i.kind {
            ItemKind::Fn(_) => "fn",
            ItemKind::Main(_) => "main",
            ItemKind::Test { .. } => "test",
            ItemKind::Bench { .. } => "bench",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["fn", "main", "test", "bench"]);
    let ItemKind::Main(main) = &p.items[1].kind else {
        panic!("expected main")
    };
    assert_eq!(main.stmts.len(), 14);
    assert_eq!(
        common::stmt(&main.stmts[3]),
        "(let inv_freq (/ 1.0 (** 10000.0 (/ (call f32::arange 32) 64.0))))"
    );
    assert_eq!(
        common::stmt(&main.stmts[13]),
        "(= y (- (* (idx x (+ i 1)) 1e-5) (neg 3)))"
    );
}
