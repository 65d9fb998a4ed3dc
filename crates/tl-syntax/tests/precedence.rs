//! Operator precedence and associativity, checked by printing the tree as an S-expression.

mod common;

use common::expr_sexpr;

#[track_caller]
fn check(text: &str, expected: &str) {
    assert_eq!(expr_sexpr(text), expected, "for {text:?}");
}

#[test]
fn arithmetic_levels() {
    check("1 + 2 * 3", "(+ 1 (* 2 3))");
    check("1 * 2 + 3", "(+ (* 1 2) 3)");
    check("a - b - c", "(- (- a b) c)");
    check("a / b * c % d", "(% (* (/ a b) c) d)");
    check("(1 + 2) * 3", "(* (+ 1 2) 3)");
    check("a + b @ c", "(+ a (@ b c))");
    check("a * b @ c", "(* a (@ b c))");
    check("a @ b @ c", "(@ (@ a b) c)");
}

#[test]
fn power_is_right_associative_and_tighter_than_unary_minus() {
    check("2 ** 3 ** 2", "(** 2 (** 3 2))");
    check("-2 ** 2", "(neg (** 2 2))");
    check("2 ** -1", "(** 2 (neg 1))");
    check("a * b ** c", "(* a (** b c))");
    check("-a * b", "(* (neg a) b)");
    check("-a @ b", "(@ (neg a) b)");
    check("!a ** b", "(not (** a b))");
    check("- -x", "(neg (neg x))");
    check("x[i] ** 2", "(** (idx x i) 2)");
    check("-x.y", "(neg (. x y))");
    check("-f(x)[0]", "(neg (idx (call f x) 0))");
}

#[test]
fn logic_levels() {
    check("a or b and c", "(or a (and b c))");
    check("a || b && c", "(or a (and b c))");
    check("a and b or c", "(or (and a b) c)");
    check("not a and b", "(and (not a) b)");
    check("not a == b", "(not (== a b))");
    check("!a == b", "(== (not a) b)");
    check("a < b && c >= d", "(and (< a b) (>= c d))");
    check("a + 1 == b * 2", "(== (+ a 1) (* b 2))");
    check("a != b or not c", "(or (!= a b) (not c))");
    check("x<-1", "(< x (neg 1))");
    check("x <= -1", "(<= x (neg 1))");
    check("a < b == c", "(== (< a b) c)");
}

#[test]
fn postfix_binds_tightest() {
    check("x as int + 1", "(+ (as x int) 1)");
    check("-x as int", "(neg (as x int))");
    check("a.b[c](d)", "(call (idx (. a b) c) d)");
    check("f(a + b, c * d)", "(call f (+ a b) (* c d))");
    check("x[i + 1, j * 2]", "(idx x (+ i 1) (* j 2))");
    check("[1 + 2, -3]", "[(+ 1 2) (neg 3)]");
    check("f(a)(b)", "(call (call f a) b)");
}

#[test]
fn juxtaposition_is_a_product_at_multiplicative_level() {
    check("A[i] B[i] + C[i]", "(+ (* (idx A i) (idx B i)) (idx C i))");
    check("A[i] B[i] ** 2", "(* (idx A i) (** (idx B i) 2))");
    check("R(x, y) Emb[x, i]", "(* (call R x y) (idx Emb x i))");
}
