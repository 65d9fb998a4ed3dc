//! Tensor equations as statements (`Y[i, k] = relu(X[i, j] W[j, k])`): each result is compared
//! with a naive f64 loop over seeded random inputs (f32 tolerance 1e-5 relative, TARGETS.md),
//! and each error case with its message.

mod common;

use std::collections::BTreeSet;

use tl_interp::{Interpreter, Options, SharedBuffer, Value};

const TOL: f64 = 1e-5;

/// A small seeded generator (xorshift64*), so that the inputs are random but reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [-1, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (bits as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn repl() -> Interpreter {
    Interpreter::with_output(Options::default(), Box::new(SharedBuffer::new()))
}

#[track_caller]
fn exec(interp: &mut Interpreter, src: &str) {
    if let Err(d) = interp.eval_repl(src) {
        panic!(
            "`{src}` failed: {}",
            d.iter()
                .map(|d| d.render(interp.sources()))
                .collect::<String>()
        );
    }
}

/// The message of the error that `src` fails with.
#[track_caller]
fn error(interp: &mut Interpreter, src: &str) -> String {
    match interp.eval_repl(src) {
        Ok(_) => panic!("`{src}` should fail"),
        Err(d) => d
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Nested array literal of `data` with shape `shape`.
fn literal(data: &[f64], shape: &[usize]) -> String {
    if shape.is_empty() {
        return format!("{:?}", data[0]);
    }
    let inner: usize = shape[1..].iter().product();
    let parts: Vec<String> = (0..shape[0])
        .map(|i| literal(&data[i * inner..(i + 1) * inner], &shape[1..]))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Binds `name` to a float32 tensor of random values and returns them.
fn random_tensor(interp: &mut Interpreter, rng: &mut Rng, name: &str, shape: &[usize]) -> Vec<f64> {
    let data = rng.vec(shape.iter().product());
    exec(
        interp,
        &format!("let {name} = tensor({})", literal(&data, shape)),
    );
    data
}

#[track_caller]
fn read(interp: &mut Interpreter, name: &str, shape: &[usize]) -> Vec<f64> {
    match interp.eval_repl(name) {
        Ok(Some(Value::Tensor(t))) => {
            assert_eq!(t.shape(), shape, "shape of `{name}`");
            assert_eq!(t.dtype(), tl_tensor::DType::F32, "dtype of `{name}`");
            t.to_vec_f64()
        }
        other => panic!("`{name}` is not a tensor: {other:?}"),
    }
}

#[track_caller]
fn assert_close(out: &[f64], reference: &[f64]) {
    assert_eq!(out.len(), reference.len(), "lengths differ");
    let diff: f64 = out
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = reference
        .iter()
        .map(|b| b * b)
        .sum::<f64>()
        .sqrt()
        .max(1e-30);
    assert!(
        diff / norm <= TOL,
        "relative error {} > {TOL}\nout {out:?}\nref {reference:?}",
        diff / norm
    );
}

#[test]
fn matrix_product() {
    let (n, m, p) = (4, 5, 3);
    let mut interp = repl();
    let mut rng = Rng::new(1);
    let a = random_tensor(&mut interp, &mut rng, "A", &[n, m]);
    let b = random_tensor(&mut interp, &mut rng, "B", &[m, p]);
    exec(&mut interp, "C[i, k] = A[i, j] B[j, k]");
    let mut reference = vec![0.0; n * p];
    for i in 0..n {
        for k in 0..p {
            reference[i * p + k] = (0..m).map(|j| a[i * m + j] * b[j * p + k]).sum();
        }
    }
    assert_close(&read(&mut interp, "C", &[n, p]), &reference);
    // `*` is the same join, and the left side's index order transposes.
    exec(&mut interp, "D[k, i] = A[i, j] * B[j, k]");
    let mut transposed = vec![0.0; n * p];
    for i in 0..n {
        for k in 0..p {
            transposed[k * n + i] = reference[i * p + k];
        }
    }
    assert_close(&read(&mut interp, "D", &[p, n]), &transposed);
}

#[test]
fn batched_product() {
    let (bs, n, m, p) = (3, 2, 4, 5);
    let mut interp = repl();
    let mut rng = Rng::new(2);
    let a = random_tensor(&mut interp, &mut rng, "A", &[bs, n, m]);
    let b = random_tensor(&mut interp, &mut rng, "B", &[bs, m, p]);
    exec(&mut interp, "C[b, i, k] = A[b, i, j] B[b, j, k]");
    let mut reference = vec![0.0; bs * n * p];
    for x in 0..bs {
        for i in 0..n {
            for k in 0..p {
                reference[(x * n + i) * p + k] = (0..m)
                    .map(|j| a[(x * n + i) * m + j] * b[(x * m + j) * p + k])
                    .sum();
            }
        }
    }
    assert_close(&read(&mut interp, "C", &[bs, n, p]), &reference);
}

#[test]
fn outer_product_and_elementwise_product() {
    let (n, m) = (4, 3);
    let mut interp = repl();
    let mut rng = Rng::new(3);
    let x = random_tensor(&mut interp, &mut rng, "x", &[n]);
    let y = random_tensor(&mut interp, &mut rng, "y", &[m]);
    let z = random_tensor(&mut interp, &mut rng, "z", &[n]);
    exec(&mut interp, "O[i, j] = x[i] y[j]");
    let outer: Vec<f64> = (0..n)
        .flat_map(|i| (0..m).map(move |j| (i, j)))
        .map(|(i, j)| x[i] * y[j])
        .collect();
    assert_close(&read(&mut interp, "O", &[n, m]), &outer);
    // The summed indices are exactly those absent from the left side: none here.
    exec(&mut interp, "E[i] = x[i] z[i]");
    let product: Vec<f64> = (0..n).map(|i| x[i] * z[i]).collect();
    assert_close(&read(&mut interp, "E", &[n]), &product);
}

#[test]
fn diagonal() {
    let n = 5;
    let mut interp = repl();
    let mut rng = Rng::new(4);
    let a = random_tensor(&mut interp, &mut rng, "A", &[n, n]);
    exec(&mut interp, "d[i] = A[i, i]");
    let diag: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    assert_close(&read(&mut interp, "d", &[n]), &diag);
    // The diagonal scaled by a row of another matrix: `i` is kept, so nothing is summed.
    let b = random_tensor(&mut interp, &mut rng, "B", &[n, n]);
    exec(&mut interp, "e[i] = A[i, i] B[i, i] / 2");
    let scaled: Vec<f64> = (0..n).map(|i| a[i * n + i] * b[i * n + i] / 2.0).collect();
    assert_close(&read(&mut interp, "e", &[n]), &scaled);
}

#[test]
fn perceptron_sums_inside_step() {
    let (n, m) = (6, 7);
    let mut interp = repl();
    let mut rng = Rng::new(5);
    let w = random_tensor(&mut interp, &mut rng, "W", &[n, m]);
    let x = random_tensor(&mut interp, &mut rng, "X", &[m]);
    let b = random_tensor(&mut interp, &mut rng, "B", &[n]);
    exec(&mut interp, "Y[i] = step(W[i, j] X[j] + B[i])");
    let reference: Vec<f64> = (0..n)
        .map(|i| {
            let s: f64 = (0..m).map(|j| w[i * m + j] * x[j]).sum::<f64>() + b[i];
            if s > 0.0 { 1.0 } else { 0.0 }
        })
        .collect();
    assert_eq!(read(&mut interp, "Y", &[n]), reference);
    // A sigmoid layer with a scale: the product sums j, then the bias adds once per i.
    exec(&mut interp, "Z[i] = sig(0.5 * W[i, j] X[j] + B[i])");
    let sig: Vec<f64> = (0..n)
        .map(|i| {
            let s = 0.5 * (0..m).map(|j| w[i * m + j] * x[j]).sum::<f64>() + b[i];
            1.0 / (1.0 + (-s).exp())
        })
        .collect();
    assert_close(&read(&mut interp, "Z", &[n]), &sig);
}

#[test]
fn mlp_layer_with_relu_then_second_layer() {
    let (bs, d, h, o) = (3, 4, 5, 2);
    let mut interp = repl();
    let mut rng = Rng::new(6);
    let x = random_tensor(&mut interp, &mut rng, "X", &[bs, d]);
    let w1 = random_tensor(&mut interp, &mut rng, "W1", &[d, h]);
    let w2 = random_tensor(&mut interp, &mut rng, "W2", &[h, o]);
    // One equation: the inner product sums `j` inside relu, the outer one sums `k`.
    exec(&mut interp, "Y[b, l] = relu(X[b, j] W1[j, k]) W2[k, l]");
    let mut reference = vec![0.0; bs * o];
    for b in 0..bs {
        let hidden: Vec<f64> = (0..h)
            .map(|k| {
                (0..d)
                    .map(|j| x[b * d + j] * w1[j * h + k])
                    .sum::<f64>()
                    .max(0.0)
            })
            .collect();
        for l in 0..o {
            reference[b * o + l] = (0..h).map(|k| hidden[k] * w2[k * o + l]).sum();
        }
    }
    assert_close(&read(&mut interp, "Y", &[bs, o]), &reference);
}

#[test]
fn sum_of_terms_sums_leftover_indices_at_the_top() {
    let (n, m) = (3, 4);
    let mut interp = repl();
    let mut rng = Rng::new(7);
    let a = random_tensor(&mut interp, &mut rng, "A", &[n, m]);
    let b = random_tensor(&mut interp, &mut rng, "B", &[n, m]);
    // `j` occurs in both terms, so it survives the sum and is summed at the top.
    exec(&mut interp, "Y[i] = A[i, j] - B[i, j]");
    let reference: Vec<f64> = (0..n)
        .map(|i| (0..m).map(|j| a[i * m + j] - b[i * m + j]).sum())
        .collect();
    assert_close(&read(&mut interp, "Y", &[n]), &reference);
    // Division by a host scalar, and a power.
    exec(&mut interp, "let k = 4.0");
    exec(&mut interp, "Q[i, j] = A[i, j] ** 2 / k");
    let sq: Vec<f64> = a.iter().map(|v| v * v / 4.0).collect();
    assert_close(&read(&mut interp, "Q", &[n, m]), &sq);
}

#[test]
fn max_and_avg_projections() {
    let (n, m, p) = (3, 4, 5);
    let mut interp = repl();
    let mut rng = Rng::new(8);
    let a = random_tensor(&mut interp, &mut rng, "A", &[n, m]);
    let b = random_tensor(&mut interp, &mut rng, "B", &[m, p]);
    exec(&mut interp, "M[i] max= A[i, j]");
    let max: Vec<f64> = (0..n)
        .map(|i| {
            (0..m)
                .map(|j| a[i * m + j])
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .collect();
    assert_close(&read(&mut interp, "M", &[n]), &max);
    // max over j of the products (no summation before the projection).
    exec(&mut interp, "P[i, k] max= A[i, j] B[j, k]");
    let mut pmax = vec![0.0; n * p];
    for i in 0..n {
        for k in 0..p {
            pmax[i * p + k] = (0..m)
                .map(|j| a[i * m + j] * b[j * p + k])
                .fold(f64::NEG_INFINITY, f64::max);
        }
    }
    assert_close(&read(&mut interp, "P", &[n, p]), &pmax);
    exec(&mut interp, "V[i, k] avg= A[i, j] B[j, k]");
    let mut pavg = vec![0.0; n * p];
    for i in 0..n {
        for k in 0..p {
            pavg[i * p + k] = (0..m).map(|j| a[i * m + j] * b[j * p + k]).sum::<f64>() / m as f64;
        }
    }
    assert_close(&read(&mut interp, "V", &[n, p]), &pavg);
}

/// A bare name on the left (`S = A[i, j] B[j]`) is an equation with no left-side indices:
/// every index is projected away (sum, max, mean), giving a tensor of shape []; the same
/// inside a function body. A bare name whose right side has no index variable is still an
/// ordinary assignment.
#[test]
fn bare_left_side_projects_every_index() {
    let (n, m) = (3, 4);
    let mut interp = repl();
    let mut rng = Rng::new(30);
    let a = random_tensor(&mut interp, &mut rng, "A", &[n, m]);
    let b = random_tensor(&mut interp, &mut rng, "B", &[m]);
    exec(&mut interp, "S = A[i, j] B[j]");
    let total: f64 = (0..n)
        .map(|i| (0..m).map(|j| a[i * m + j] * b[j]).sum::<f64>())
        .sum();
    assert_close(&read(&mut interp, "S", &[]), &[total]);
    // `i` occurs only in the product `A[i, j]`, so it is summed there (the usual rule).
    exec(&mut interp, "Q = (A[i, j] - B[j]) ** 2");
    let sq: f64 = (0..m)
        .map(|j| ((0..n).map(|i| a[i * m + j]).sum::<f64>() - b[j]).powi(2))
        .sum();
    assert_close(&read(&mut interp, "Q", &[]), &[sq]);
    exec(&mut interp, "Top max= A[i, j]");
    let top = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_close(&read(&mut interp, "Top", &[]), &[top]);
    exec(&mut interp, "Mean avg= A[i, j]");
    assert_close(
        &read(&mut interp, "Mean", &[]),
        &[a.iter().sum::<f64>() / (n * m) as f64],
    );
    exec(&mut interp, "fn total(x) { T = x[i, j]\n T }");
    exec(&mut interp, "let U = total(A)");
    assert_close(&read(&mut interp, "U", &[]), &[a.iter().sum::<f64>()]);
    exec(&mut interp, "let k = 1\nlet R = B[0]\nR = B[k]");
    assert_close(&read(&mut interp, "R", &[]), &[b[1]]);
}

#[test]
fn add_assign_accumulates_equations() {
    let (n, m) = (4, 3);
    let mut interp = repl();
    let mut rng = Rng::new(9);
    let a = random_tensor(&mut interp, &mut rng, "A", &[n, m]);
    let x = random_tensor(&mut interp, &mut rng, "x", &[m]);
    let c = random_tensor(&mut interp, &mut rng, "c", &[n]);
    // `+=` on a tensor that does not exist yet starts from zeros.
    exec(&mut interp, "Y[i] += A[i, j] x[j]");
    exec(&mut interp, "Y[i] += c[i]");
    exec(&mut interp, "Y[i] -= 0.5 * c[i]");
    let reference: Vec<f64> = (0..n)
        .map(|i| (0..m).map(|j| a[i * m + j] * x[j]).sum::<f64>() + 0.5 * c[i])
        .collect();
    assert_close(&read(&mut interp, "Y", &[n]), &reference);
}

#[test]
fn constant_indices_select() {
    let (n, m, p) = (3, 4, 5);
    let mut interp = repl();
    let mut rng = Rng::new(10);
    let a = random_tensor(&mut interp, &mut rng, "A", &[n, m, p]);
    exec(&mut interp, "let r = 2");
    exec(&mut interp, "S[j] = A[r, j, 1]");
    let reference: Vec<f64> = (0..m).map(|j| a[(2 * m + j) * p + 1]).collect();
    assert_close(&read(&mut interp, "S", &[m]), &reference);
    // A negative constant counts from the end.
    exec(&mut interp, "T[i] = A[i, -1, 0]");
    let last: Vec<f64> = (0..n).map(|i| a[(i * m + m - 1) * p]).collect();
    assert_close(&read(&mut interp, "T", &[n]), &last);
}

#[test]
fn softmax_over_last_index_and_broadcast_into_existing() {
    let (n, m) = (3, 4);
    let mut interp = repl();
    let mut rng = Rng::new(11);
    let a = random_tensor(&mut interp, &mut rng, "A", &[n, m]);
    exec(&mut interp, "P[i, j] = softmax(A[i, j])");
    let mut reference = vec![0.0; n * m];
    for i in 0..n {
        let row = &a[i * m..(i + 1) * m];
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = row.iter().map(|v| (v - max).exp()).sum();
        for j in 0..m {
            reference[i * m + j] = (row[j] - max).exp() / total;
        }
    }
    assert_close(&read(&mut interp, "P", &[n, m]), &reference);
    // `k` is not on the right side: it takes its size from the existing `R` and broadcasts.
    exec(&mut interp, "let R = zeros([3, 2])");
    let x = random_tensor(&mut interp, &mut rng, "x", &[n]);
    exec(&mut interp, "R[i, k] = exp(x[i])");
    let bcast: Vec<f64> = (0..n).flat_map(|i| [x[i].exp(), x[i].exp()]).collect();
    assert_close(&read(&mut interp, "R", &[n, 2]), &bcast);
}

#[test]
fn datalog_rule_over_boolean_tensors() {
    let mut interp = repl();
    // Sister[x, y]: 0 is a sister of 1; Parent[y, z]: 1 is a parent of 2 and 3.
    exec(
        &mut interp,
        "let Sister = tensor([[false, true, false, false], [false, false, false, false], [false, false, false, false], [false, false, false, false]])",
    );
    exec(&mut interp, "let Parent = zeros([4, 4])");
    exec(&mut interp, "Parent[1, 2] = 1.0");
    exec(&mut interp, "Parent[1, 3] = 1.0");
    exec(&mut interp, "Aunt[x, z] = step(Sister[x, y] Parent[y, z])");
    let mut reference = vec![0.0; 16];
    reference[2] = 1.0;
    reference[3] = 1.0;
    assert_eq!(read(&mut interp, "Aunt", &[4, 4]), reference);
}

#[test]
fn equation_in_a_loop_uses_the_loop_variable_as_a_constant() {
    let (n, m) = (3, 4);
    let mut interp = repl();
    let mut rng = Rng::new(12);
    let a = random_tensor(&mut interp, &mut rng, "A", &[n, m]);
    exec(
        &mut interp,
        "let acc = zeros([4])\nfor r in range(3) {\n    acc[j] += A[r, j]\n}",
    );
    let reference: Vec<f64> = (0..m).map(|j| (0..n).map(|i| a[i * m + j]).sum()).collect();
    assert_close(&read(&mut interp, "acc", &[m]), &reference);
}

#[test]
fn index_size_mismatch_names_index_tensors_and_sizes() {
    let mut interp = repl();
    exec(&mut interp, "let A = ones([2, 3])");
    exec(&mut interp, "let B = ones([4, 5])");
    let msg = error(&mut interp, "C[i, k] = A[i, j] B[j, k]");
    assert_eq!(msg, "index `j` has size 3 in `A` but size 4 in `B`");
}

#[test]
fn error_cases() {
    let mut interp = repl();
    exec(&mut interp, "let A = ones([2, 3])");
    exec(&mut interp, "let x = ones([3])");
    exec(&mut interp, "let f = 2.5");
    exec(&mut interp, "let Z = ones([5])");
    exec(&mut interp, "let k = 1.5");
    let cases = [
        (
            "Z[i] += A[i, j]",
            "tensor equation: `Z` has shape [5] but the right side has shape [2]",
        ),
        (
            "k[i] += A[i, j]",
            "cannot add a tensor equation's result to `k`: it is a float, not a tensor",
        ),
        (
            "Y[i, k] = A[i, j]",
            "index `k` of `Y` does not appear on the right side, so its size is unknown",
        ),
        (
            "Y[i] = A[i, j, k]",
            "tensor `A` has rank 2 (shape [2, 3]) but is indexed with 3 indices",
        ),
        (
            "Y[i] = A[i, j**2]",
            "an index in a tensor equation is an index variable, an int, or index arithmetic: `+ - * / %` of those (as in `t+1`, `x+dx`, `x/2`)",
        ),
        ("Y[i] = A[i, j/0]", "index arithmetic divides by zero"),
        (
            "Y[i + j, j] = A[i, j]",
            "the index `j` appears twice on the left side of a tensor equation",
        ),
        (
            "Y[i] = A[i, j'.]",
            "the normalised index `j'.` belongs on the left side of a tensor equation; write `j'` here",
        ),
        (
            "Y[i'., j'.] = A[i', j']",
            "a tensor equation normalises over one index, but both `i'.` and `j'.` are marked",
        ),
        (
            "Y[i, *t+1] = A[i, *t]",
            "`Y` needs a value before this equation: a virtual index keeps only the current value of `Y`, which starts as the value it has now",
        ),
        (
            "Z[*t+2] = Z[*t] A[0, t]",
            "not supported yet: reading `Z` at `*t` while writing it at `*t+2`: a virtual index keeps only the previous step (write `*t+1` on the left and `*t` on the right)",
        ),
        (
            "Z[i] = A[i, *t]",
            "the virtual index `*t` is read here, but the left side has none (write it as `State[*t+1] = ...`)",
        ),
        ("Y[i] = Q[i, j]", "unknown tensor `Q` in a tensor equation"),
        (
            "Y[i] = f[i]",
            "`f` in a tensor equation must be a tensor, got a float",
        ),
        (
            "Y[i] = A[i, j] * x",
            "a tensor of shape [3] in a tensor equation must be indexed, as in `T[i, j]`",
        ),
        (
            "Y[i] = gelu(A[i, j])",
            "not supported yet: calling `gelu` in a tensor equation (the functions are step, sig, sigmoid, relu, exp, log, tanh, sqrt, abs, neg, softmax and lnorm)",
        ),
        (
            "Y[i] = A[i, j] < 1",
            "not supported yet: the operator `<` in tensor equations",
        ),
        (
            "Y[i, i] = A[i, i]",
            "the index `i` appears twice on the left side of a tensor equation",
        ),
        (
            "Y[i] *= A[i, j]",
            "not supported yet: `*=` and `/=` in tensor equations",
        ),
        (
            "Y[i] = A[i, 7]",
            "tensor `A`: constant index 7 is out of bounds for dimension 1 of size 3",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(error(&mut interp, src), expected, "for `{src}`");
    }
    // A failed equation binds nothing.
    assert!(interp.eval_repl("Y").is_err());
}

#[test]
fn any_index_free_expression_can_be_indexed() {
    let (n, m) = (3, 4);
    let mut interp = repl();
    let mut rng = Rng::new(13);
    let a = random_tensor(&mut interp, &mut rng, "A", &[n, m]);
    // `transpose(A)` has shape [m, n]; reading it at [j, i] gives back A[i, j], times 3.
    exec(&mut interp, "T[i, j] = transpose(A, 0, 1)[j, i] * 3");
    let reference: Vec<f64> = a.iter().map(|v| v * 3.0).collect();
    assert_close(&read(&mut interp, "T", &[n, m]), &reference);
    // Index arithmetic on such a term: `t` takes the size of the dimension it shifts.
    exec(&mut interp, "struct Holder { w: float32[?, ?] }");
    exec(&mut interp, "let hold = Holder { w: transpose(A, 0, 1) }");
    exec(&mut interp, "U[i, t] = hold.w[t+1, i]");
    let mut shifted = vec![0.0; n * m];
    for i in 0..n {
        for t in 0..m - 1 {
            shifted[i * m + t] = a[i * m + t + 1];
        }
    }
    assert_close(&read(&mut interp, "U", &[n, m]), &shifted);
}

#[test]
fn an_index_used_outside_a_product_is_not_summed_inside_it() {
    let (n, m) = (4, 6);
    let mut interp = repl();
    let mut rng = Rng::new(14);
    let w = random_tensor(&mut interp, &mut rng, "W", &[n, m]);
    let x = random_tensor(&mut interp, &mut rng, "X", &[m]);
    let v = random_tensor(&mut interp, &mut rng, "V", &[m]);
    // `j` also occurs in `V[j]`, so `tanh` applies to each W[i, j] X[j]; the outer product
    // (the only place left holding `j`) then sums it.
    exec(&mut interp, "Y[i] = tanh(W[i, j] X[j]) V[j]");
    let reference: Vec<f64> = (0..n)
        .map(|i| (0..m).map(|j| (w[i * m + j] * x[j]).tanh() * v[j]).sum())
        .collect();
    assert_close(&read(&mut interp, "Y", &[n]), &reference);
    // Without `V[j]`, `j` is summed inside `tanh`.
    exec(&mut interp, "Z[i] = tanh(W[i, j] X[j])");
    let inside: Vec<f64> = (0..n)
        .map(|i| (0..m).map(|j| w[i * m + j] * x[j]).sum::<f64>().tanh())
        .collect();
    assert_close(&read(&mut interp, "Z", &[n]), &inside);
}

/// `data[idx]` of a row-major tensor of shape `shape`, or 0 outside it.
fn at(data: &[f64], shape: &[usize], idx: &[i64]) -> f64 {
    let mut flat = 0usize;
    for (d, &i) in idx.iter().enumerate() {
        if i < 0 || i as usize >= shape[d] {
            return 0.0;
        }
        flat = flat * shape[d] + i as usize;
    }
    data[flat]
}

#[test]
fn shifted_indices_read_zero_outside() {
    let (n, m) = (3, 6);
    let mut interp = repl();
    let mut rng = Rng::new(11);
    let x = random_tensor(&mut interp, &mut rng, "X", &[n, m]);
    exec(&mut interp, "Y[i, t] = X[i, t+1]");
    exec(&mut interp, "Z[i, t] = X[i, t-2] + X[i, 2*t]");
    let mut y = vec![0.0; n * m];
    let mut z = vec![0.0; n * m];
    for i in 0..n {
        for t in 0..m as i64 {
            y[i * m + t as usize] = at(&x, &[n, m], &[i as i64, t + 1]);
            z[i * m + t as usize] =
                at(&x, &[n, m], &[i as i64, t - 2]) + at(&x, &[n, m], &[i as i64, 2 * t]);
        }
    }
    assert_close(&read(&mut interp, "Y", &[n, m]), &y);
    assert_close(&read(&mut interp, "Z", &[n, m]), &z);
}

#[test]
fn convolution_with_index_arithmetic() {
    let (h, w, c, kh, kw, o) = (6, 7, 3, 3, 2, 4);
    let mut interp = repl();
    let mut rng = Rng::new(12);
    let img = random_tensor(&mut interp, &mut rng, "Image", &[h, w, c]);
    let f = random_tensor(&mut interp, &mut rng, "F", &[o, kh, kw, c]);
    // `x` and `y` take the image's sizes (they index it only inside arithmetic).
    exec(
        &mut interp,
        "Out[o, x, y] = Image[x+dx, y+dy, c] F[o, dx, dy, c]",
    );
    let mut reference = vec![0.0; o * h * w];
    for oo in 0..o {
        for x in 0..h {
            for y in 0..w {
                let mut acc = 0.0;
                for dx in 0..kh {
                    for dy in 0..kw {
                        for cc in 0..c {
                            acc += at(
                                &img,
                                &[h, w, c],
                                &[(x + dx) as i64, (y + dy) as i64, cc as i64],
                            ) * f[((oo * kh + dx) * kw + dy) * c + cc];
                        }
                    }
                }
                reference[(oo * h + x) * w + y] = acc;
            }
        }
    }
    assert_close(&read(&mut interp, "Out", &[o, h, w]), &reference);
}

#[test]
fn pooling_by_integer_division_sums_maxes_and_averages() {
    let (h, w) = (5, 7);
    let (ph, pw) = (3, 3); // ceil(5/2), ceil(7/3)
    let mut interp = repl();
    let mut rng = Rng::new(13);
    let img = random_tensor(&mut interp, &mut rng, "I", &[h, w]);
    exec(&mut interp, "S[x/2, y/3] = I[x, y]");
    exec(&mut interp, "M[x/2, y/3] max= I[x, y]");
    exec(&mut interp, "A[x/2, y/3] avg= I[x, y]");
    let mut sum = vec![0.0; ph * pw];
    let mut max = vec![f64::NEG_INFINITY; ph * pw];
    let mut count = vec![0.0; ph * pw];
    for x in 0..h {
        for y in 0..w {
            let cell = (x / 2) * pw + y / 3;
            sum[cell] += img[x * w + y];
            max[cell] = max[cell].max(img[x * w + y]);
            count[cell] += 1.0;
        }
    }
    let avg: Vec<f64> = sum.iter().zip(&count).map(|(s, c)| s / c).collect();
    assert_close(&read(&mut interp, "S", &[ph, pw]), &sum);
    assert_close(&read(&mut interp, "M", &[ph, pw]), &max);
    assert_close(&read(&mut interp, "A", &[ph, pw]), &avg);
    // A summed index under pooling: max over the column and the pooled rows together.
    exec(&mut interp, "R[x/2] max= I[x, y]");
    let mut rmax = vec![f64::NEG_INFINITY; ph];
    for x in 0..h {
        for y in 0..w {
            rmax[x / 2] = rmax[x / 2].max(img[x * w + y]);
        }
    }
    assert_close(&read(&mut interp, "R", &[ph]), &rmax);
    // A shifted left side: cells nothing maps to are 0; positions past the end are dropped
    // when the tensor exists.
    exec(&mut interp, "let v = I[0, 0:4]");
    exec(&mut interp, "U[t+2] = v[t]");
    let u: Vec<f64> = [0.0, 0.0]
        .into_iter()
        .chain(img[0..4].iter().copied())
        .collect();
    assert_close(&read(&mut interp, "U", &[6]), &u);
    exec(&mut interp, "let V = zeros([4])");
    exec(&mut interp, "V[t+1] += v[t]");
    let vv = vec![0.0, img[0], img[1], img[2]];
    assert_close(&read(&mut interp, "V", &[4]), &vv);
    // max= leaves cells nothing lands in at 0; any one-variable map groups its positions
    // (here by residue, not by contiguous blocks).
    exec(&mut interp, "E[t+2] max= v[t]");
    let e: Vec<f64> = [0.0, 0.0]
        .into_iter()
        .chain(img[0..4].iter().copied())
        .collect();
    assert_close(&read(&mut interp, "E", &[6]), &e);
    exec(&mut interp, "let row = I[1, 0:7]");
    exec(&mut interp, "Res[x % 3] = row[x]");
    exec(&mut interp, "ResMax[x % 3] max= row[x]");
    let mut res = vec![0.0; 3];
    let mut resmax = vec![f64::NEG_INFINITY; 3];
    for x in 0..7 {
        res[x % 3] += img[w + x];
        resmax[x % 3] = resmax[x % 3].max(img[w + x]);
    }
    assert_close(&read(&mut interp, "Res", &[3]), &res);
    assert_close(&read(&mut interp, "ResMax", &[3]), &resmax);
}

#[test]
fn slices_are_anonymous_indices() {
    let (n, m) = (3, 8);
    let mut interp = repl();
    let mut rng = Rng::new(14);
    let x = random_tensor(&mut interp, &mut rng, "X", &[n, m]);
    let a = random_tensor(&mut interp, &mut rng, "a", &[m]);
    // A slice absent from the left side is summed.
    exec(&mut interp, "S[i] = X[i, 1:7:2]");
    let s: Vec<f64> = (0..n)
        .map(|i| [1, 3, 5].iter().map(|&j| x[i * m + j]).sum())
        .collect();
    assert_close(&read(&mut interp, "S", &[n]), &s);
    // The k-th slice of the left side and of each term share one index.
    exec(&mut interp, "C[i, :] = X[i, 4:8]");
    let c: Vec<f64> = (0..n)
        .flat_map(|i| (4..8).map(move |j| (i, j)))
        .map(|(i, j)| x[i * m + j])
        .collect();
    assert_close(&read(&mut interp, "C", &[n, 4]), &c);
    exec(&mut interp, "d[i] = X[i, 0:4] a[4:]");
    let d: Vec<f64> = (0..n)
        .map(|i| (0..4).map(|j| x[i * m + j] * a[4 + j]).sum())
        .collect();
    assert_close(&read(&mut interp, "d", &[n]), &d);
    assert_eq!(
        error(&mut interp, "e[i] = X[i, 0:4] a[0:3]"),
        "a slice has size 4 in `X` but size 3 in `a`"
    );
    // A left-side slice with an end writes exactly there and must match the right side.
    exec(&mut interp, "let Y = zeros([3, 8])");
    exec(&mut interp, "Y[i, 2:6] = X[i, 0:4]");
    let y: Vec<f64> = (0..n)
        .flat_map(|i| (0..m).map(move |j| (i, j)))
        .map(|(i, j)| {
            if (2..6).contains(&j) {
                x[i * m + j - 2]
            } else {
                0.0
            }
        })
        .collect();
    assert_close(&read(&mut interp, "Y", &[n, m]), &y);
    assert_eq!(
        error(&mut interp, "Y[i, 2:5] = X[i, 0:4]"),
        "the left side's slice has 3 positions but the matching slice of `X` has 4"
    );
}

#[test]
fn normalised_index_softmax_attention() {
    let (p, dk, dv) = (5, 4, 3);
    let mut interp = repl();
    let mut rng = Rng::new(15);
    let q = random_tensor(&mut interp, &mut rng, "Q", &[p, dk]);
    let k = random_tensor(&mut interp, &mut rng, "K", &[p, dk]);
    let v = random_tensor(&mut interp, &mut rng, "V", &[p, dv]);
    // `p'.` marks the index softmax normalises over, here the first of the two.
    exec(&mut interp, "Comp[p'., p] = softmax(Q[p, d] K[p', d] / 2)");
    exec(&mut interp, "Attn[p, e] = Comp[p', p] V[p', e]");
    let mut comp = vec![0.0; p * p];
    for a in 0..p {
        let scores: Vec<f64> = (0..p)
            .map(|b| (0..dk).map(|d| q[a * dk + d] * k[b * dk + d]).sum::<f64>() / 2.0)
            .collect();
        let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = scores.iter().map(|s| (s - mx).exp()).sum();
        for b in 0..p {
            comp[b * p + a] = (scores[b] - mx).exp() / z;
        }
    }
    assert_close(&read(&mut interp, "Comp", &[p, p]), &comp);
    let attn: Vec<f64> = (0..p)
        .flat_map(|a| (0..dv).map(move |e| (a, e)))
        .map(|(a, e)| (0..p).map(|b| comp[b * p + a] * v[b * dv + e]).sum())
        .collect();
    assert_close(&read(&mut interp, "Attn", &[p, dv]), &attn);
    // Without softmax, `p'.` divides by the sum over `p'`.
    exec(&mut interp, "N[p, p'.] = exp(Q[p, d] K[p', d])");
    let mut n = vec![0.0; p * p];
    for a in 0..p {
        let row: Vec<f64> = (0..p)
            .map(|b| {
                (0..dk)
                    .map(|d| q[a * dk + d] * k[b * dk + d])
                    .sum::<f64>()
                    .exp()
            })
            .collect();
        let z: f64 = row.iter().sum();
        for b in 0..p {
            n[a * p + b] = row[b] / z;
        }
    }
    assert_close(&read(&mut interp, "N", &[p, p]), &n);
}

#[test]
fn virtual_index_runs_a_recurrence_with_one_step_of_memory() {
    let (h, x, steps) = (4, 3, 6);
    let mut interp = repl();
    let mut rng = Rng::new(16);
    let w = random_tensor(&mut interp, &mut rng, "W", &[h, h]);
    let u = random_tensor(&mut interp, &mut rng, "U", &[h, x]);
    let input = random_tensor(&mut interp, &mut rng, "Input", &[x, steps]);
    let s0 = random_tensor(&mut interp, &mut rng, "State", &[h]);
    exec(
        &mut interp,
        "State[i, *t+1] = tanh(W[i, j] State[j, *t] + U[i, k] Input[k, t])",
    );
    let mut s = s0;
    for t in 0..steps {
        s = (0..h)
            .map(|i| {
                let a: f64 = (0..h).map(|j| w[i * h + j] * s[j]).sum();
                let b: f64 = (0..x).map(|k| u[i * x + k] * input[k * steps + t]).sum();
                (a + b).tanh()
            })
            .collect();
    }
    // Only the current value is kept: State has no `t` dimension.
    assert_close(&read(&mut interp, "State", &[h]), &s);
}

/// A random family tree: `Parent` facts over `n` people, each person after the first few
/// getting one or two parents among the earlier ones.
fn family(rng: &mut Rng, n: usize) -> Vec<(usize, usize)> {
    let mut facts = Vec::new();
    for child in 2..n {
        let a = ((rng.next() + 1.0) / 2.0 * child as f64) as usize % child;
        facts.push((a, child));
        let b = ((rng.next() + 1.0) / 2.0 * child as f64) as usize % child;
        if b != a {
            facts.push((b, child));
        }
    }
    facts
}

/// The scores `S` (n x n) read back as a set of pairs above one half.
fn pairs_above_half(scores: &[f64], n: usize) -> std::collections::BTreeSet<(usize, usize)> {
    (0..n * n)
        .filter(|&k| scores[k] > 0.5)
        .map(|k| (k / n, k % n))
        .collect()
}

#[test]
fn embedded_relations_at_temperature_zero_reproduce_datalog() {
    let n = 12;
    let mut interp = repl();
    let mut rng = Rng::new(21);
    let facts = family(&mut rng, n);
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    for &(a, b) in &facts {
        exec(&mut interp, &format!("Parent({}, {})", names[a], names[b]));
    }
    exec(
        &mut interp,
        "Grandparent(X, Z) <- Parent(X, Y), Parent(Y, Z)",
    );
    exec(&mut interp, "seed(7)");
    exec(
        &mut interp,
        &format!(
            "embedding Emb {{ entities: {{{}}}, dimension: 512 }}",
            names.join(", ")
        ),
    );
    // The facts' outer products, and an embedded rule: the composition of embedded Parent.
    exec(&mut interp, "EmbP[i, j] = Parent(x, y) Emb[x, i] Emb[y, j]");
    exec(&mut interp, "EmbG[i, k] = EmbP[i, j] EmbP[j, k]");
    exec(&mut interp, "let T = 0");
    exec(
        &mut interp,
        "P[x, y] = sig((EmbP[i, j] Emb[x, i] Emb[y, j] - 0.5) / T)",
    );
    exec(
        &mut interp,
        "G[x, z] = sig((EmbG[i, k] Emb[x, i] Emb[z, k] - 0.5) / T)",
    );
    // The reference: the facts, and grandparents by a plain join of the fact set.
    let parent: std::collections::BTreeSet<(usize, usize)> = facts.iter().copied().collect();
    let mut grand = std::collections::BTreeSet::new();
    for &(a, b) in &parent {
        for &(c, d) in &parent {
            if b == c {
                grand.insert((a, d));
            }
        }
    }
    assert!(grand.len() >= 5, "a tree deep enough to test: {grand:?}");
    let p = read(&mut interp, "P", &[n, n]);
    assert!(
        p.iter().all(|&v| v == 0.0 || v == 1.0),
        "T = 0 is exact: {p:?}"
    );
    assert_eq!(pairs_above_half(&p, n), parent);
    let g = read(&mut interp, "G", &[n, n]);
    assert!(g.iter().all(|&v| v == 0.0 || v == 1.0));
    assert_eq!(pairs_above_half(&g, n), grand);
    // The Datalog engine agrees with the same set.
    let mut engine_pairs = std::collections::BTreeSet::new();
    let out = SharedBuffer::new();
    let mut q = Interpreter::with_output(Options::default(), Box::new(out.clone()));
    for &(a, b) in &facts {
        exec(&mut q, &format!("Parent({}, {})", names[a], names[b]));
    }
    exec(&mut q, "Grandparent(X, Z) <- Parent(X, Y), Parent(Y, Z)");
    exec(&mut q, "query Grandparent(X, Z)");
    for line in out.contents().lines() {
        let cells: Vec<&str> = line
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        if let [x, z] = cells.as_slice()
            && let (Some(x), Some(z)) = (x.strip_prefix('p'), z.strip_prefix('p'))
            && let (Ok(x), Ok(z)) = (x.parse::<usize>(), z.parse::<usize>())
        {
            engine_pairs.insert((x, z));
        }
    }
    assert_eq!(engine_pairs, grand, "engine output:\n{}", out.contents());
    // A higher temperature gives graded scores strictly between 0 and 1, facts above one half.
    exec(&mut interp, "T = 0.1");
    exec(
        &mut interp,
        "P2[x, y] = sig((EmbP[i, j] Emb[x, i] Emb[y, j] - 0.5) / T)",
    );
    let p2 = read(&mut interp, "P2", &[n, n]);
    assert!(p2.iter().all(|&v| v > 0.0 && v < 1.0), "{p2:?}");
    assert!(
        p2.iter().any(|&v| v > 0.5 && v < 0.999),
        "graded, not saturated: {p2:?}"
    );
    assert_eq!(pairs_above_half(&p2, n), parent);
}

#[test]
fn embedding_declarations_and_lookups() {
    let mut interp = repl();
    exec(&mut interp, "seed(3)");
    exec(
        &mut interp,
        "embedding E { entities: {a, b, c}, dimension: 4, init: orthonormal }",
    );
    let e = read(&mut interp, "E", &[3, 4]);
    for r in 0..3 {
        for s in 0..3 {
            let dot: f64 = (0..4).map(|d| e[r * 4 + d] * e[s * 4 + d]).sum();
            let want = if r == s { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < 1e-5, "rows {r} {s}: {dot}");
        }
    }
    // An entity names its row; a string or a variable bound to one does too.
    exec(&mut interp, "rb[d] = E[b, d]");
    assert_close(&read(&mut interp, "rb", &[4]), &e[4..8]);
    exec(&mut interp, "let who = \"c\"");
    exec(&mut interp, "rc[d] = E[who, d]");
    assert_close(&read(&mut interp, "rc", &[4]), &e[8..12]);
    assert_eq!(
        error(&mut interp, "rz[d] = E[\"zed\", d]"),
        "`zed` is not an entity of the embedding `E`"
    );
    assert_eq!(
        error(
            &mut interp,
            "embedding F { entities: {a, b, c}, dimension: 2, init: orthonormal }"
        ),
        "embedding `F`: `init: orthonormal` needs dimension >= the number of entities (2 < 3)"
    );
    assert_eq!(
        error(
            &mut interp,
            "embedding G { entities: auto, dimension: 2 }\nq[d] = G[x, d]"
        ),
        "embedding `G` has `entities: auto`, but no facts name any symbol yet"
    );
    // `auto` takes the engine's symbols, in the order first stated, at the first use.
    exec(&mut interp, "Likes(zoe, yan)\nLikes(yan, xia)");
    exec(&mut interp, "embedding H { entities: auto, dimension: 6 }");
    exec(&mut interp, "ry[d] = H[yan, d]");
    let h = read(&mut interp, "H", &[3, 6]);
    assert_close(&read(&mut interp, "ry", &[6]), &h[6..12]);
    exec(&mut interp, "rx[d] = H[xia, d]");
    assert_close(&read(&mut interp, "rx", &[6]), &h[12..18]);
    for r in 0..3 {
        let norm: f64 = (0..6).map(|d| h[r * 6 + d] * h[r * 6 + d]).sum();
        assert!(
            (norm - 1.0).abs() < 1e-5,
            "random rows have unit length: {norm}"
        );
    }
}

#[test]
fn a_function_sums_the_indices_that_occur_only_inside_it() {
    let (e, f) = (4, 5);
    let mut interp = repl();
    let mut rng = Rng::new(17);
    let w = random_tensor(&mut interp, &mut rng, "W", &[e, f]);
    let v = random_tensor(&mut interp, &mut rng, "V", &[e, f]);
    let a = random_tensor(&mut interp, &mut rng, "A", &[f]);
    let b = random_tensor(&mut interp, &mut rng, "B", &[f]);
    // `f` appears in both products, so neither product sums it; relu's argument does.
    exec(&mut interp, "Y[i] = relu(W[i, k] A[k] + V[i, k] B[k])");
    let y: Vec<f64> = (0..e)
        .map(|i| {
            (0..f)
                .map(|k| w[i * f + k] * a[k] + v[i * f + k] * b[k])
                .sum::<f64>()
                .max(0.0)
        })
        .collect();
    assert!(y.contains(&0.0) && y.iter().any(|&x| x > 0.0), "{y:?}");
    assert_close(&read(&mut interp, "Y", &[e]), &y);
}

#[test]
fn lnorm_normalises_over_the_marked_or_last_index() {
    let (n, d) = (3, 6);
    let mut interp = repl();
    let mut rng = Rng::new(18);
    let x = random_tensor(&mut interp, &mut rng, "X", &[n, d]);
    let w = random_tensor(&mut interp, &mut rng, "W", &[d, d]);
    exec(&mut interp, "Y[p, e] = lnorm(X[p, f] W[f, e])");
    exec(&mut interp, "Z[e'., p] = lnorm(X[p, f] W[f, e'])");
    let mut y = vec![0.0; n * d];
    for p in 0..n {
        let row: Vec<f64> = (0..d)
            .map(|e| (0..d).map(|f| x[p * d + f] * w[f * d + e]).sum())
            .collect();
        let mean = row.iter().sum::<f64>() / d as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
        for e in 0..d {
            y[p * d + e] = (row[e] - mean) / (var + 1e-5).sqrt();
        }
    }
    assert_close(&read(&mut interp, "Y", &[n, d]), &y);
    let z: Vec<f64> = (0..d)
        .flat_map(|e| (0..n).map(move |p| (e, p)))
        .map(|(e, p)| y[p * d + e])
        .collect();
    assert_close(&read(&mut interp, "Z", &[d, n]), &z);
}

#[test]
fn left_side_arithmetic_over_several_variables_flattens() {
    let (p, h, k) = (3, 4, 5);
    let mut interp = repl();
    let mut rng = Rng::new(19);
    let a = random_tensor(&mut interp, &mut rng, "Attn", &[p, h, k]);
    // Concatenating the heads (the paper's concat): column h*K + v.
    exec(&mut interp, "let K = 5");
    exec(&mut interp, "Merged[q, c*K + v] = Attn[q, c, v]");
    assert_close(&read(&mut interp, "Merged", &[p, h * k]), &a);
    // Several positions landing on one cell add: anti-diagonal sums of a matrix.
    let m = random_tensor(&mut interp, &mut rng, "M", &[4, 3]);
    exec(&mut interp, "Anti[i + j] = M[i, j]");
    let mut anti = vec![0.0; 6];
    for i in 0..4 {
        for j in 0..3 {
            anti[i + j] += m[i * 3 + j];
        }
    }
    assert_close(&read(&mut interp, "Anti", &[6]), &anti);
    exec(&mut interp, "AntiMax[i + j] max= M[i, j]");
    let mut amax = vec![f64::NEG_INFINITY; 6];
    for i in 0..4 {
        for j in 0..3 {
            amax[i + j] = amax[i + j].max(m[i * 3 + j]);
        }
    }
    assert_close(&read(&mut interp, "AntiMax", &[6]), &amax);
}

/// `concat` (paper Table 2, `Merge[b, p, dm] = concat(Attn[b, h, p, dv])`): the argument's
/// indices absent from the left side, flattened row-major in order of first appearance, are laid
/// along the one left-side index no argument uses; several arguments follow each other along it.
/// Each result against a naive f64 loop on random inputs of odd sizes.
#[test]
fn concat_lays_the_missing_indices_along_the_new_one() {
    let (b, h, p, d) = (2, 3, 5, 7);
    let mut interp = repl();
    let mut rng = Rng::new(23);
    let attn = random_tensor(&mut interp, &mut rng, "Attn", &[b, h, p, d]);
    exec(&mut interp, "Merge[b, p, dm] = concat(Attn[b, h, p, dv])");
    let mut merge = vec![0.0; b * p * h * d];
    for bi in 0..b {
        for hi in 0..h {
            for pi in 0..p {
                for di in 0..d {
                    merge[(bi * p + pi) * h * d + hi * d + di] =
                        attn[((bi * h + hi) * p + pi) * d + di];
                }
            }
        }
    }
    assert_close(&read(&mut interp, "Merge", &[b, p, h * d]), &merge);
    // The same as left-side index arithmetic.
    exec(&mut interp, "let Dv = 7");
    exec(&mut interp, "Merge2[b, p, h*Dv + dv] = Attn[b, h, p, dv]");
    assert_close(&read(&mut interp, "Merge2", &[b, p, h * d]), &merge);
    // The order of first appearance decides the layout: here d is the outer index.
    exec(&mut interp, "Swap[p, k] = concat(Attn[1, dv, p, h])");
    let mut swap = vec![0.0; p * h * d];
    for pi in 0..p {
        for di in 0..h {
            for hi in 0..d {
                // Attn[1, dv=di, p, h=hi] sits at column di*D + hi.
                swap[pi * h * d + di * d + hi] = attn[((h + di) * p + pi) * d + hi];
            }
        }
    }
    assert_close(&read(&mut interp, "Swap", &[p, h * d]), &swap);
}

#[test]
fn concat_joins_several_arguments_broadcasting_and_slicing() {
    let (n, d, e, w) = (3, 5, 2, 3);
    let mut interp = repl();
    let mut rng = Rng::new(24);
    let a = random_tensor(&mut interp, &mut rng, "A", &[n, d]);
    let bm = random_tensor(&mut interp, &mut rng, "B", &[n, e]);
    let c = random_tensor(&mut interp, &mut rng, "C", &[w]);
    // The joined index first on the left; C lacks n and broadcasts; 2.5 is one position.
    exec(
        &mut interp,
        "Y[k, i] = concat(A[i, x], B[i, y], C[z], 2.5, B[i, 1])",
    );
    let width = d + e + w + 1 + 1;
    let mut y = vec![0.0; width * n];
    for i in 0..n {
        let mut row: Vec<f64> = Vec::new();
        row.extend((0..d).map(|x| a[i * d + x]));
        row.extend((0..e).map(|x| bm[i * e + x]));
        row.extend(c.iter().copied());
        row.push(2.5);
        row.push(bm[i * e + 1]);
        for (k, v) in row.into_iter().enumerate() {
            y[k * n + i] = v;
        }
    }
    assert_close(&read(&mut interp, "Y", &[width, n]), &y);
    // Slices are indices of their own: columns 1..4 then column 0.
    exec(&mut interp, "S[i, k] = concat(A[i, 1:4], A[i, 0:1])");
    let s: Vec<f64> = (0..n)
        .flat_map(|i| [1, 2, 3, 0].map(|x| a[i * d + x]))
        .collect();
    assert_close(&read(&mut interp, "S", &[n, 4]), &s);
    // Nothing is summed inside concat: a product keeps both indices (k = x*E + y).
    exec(&mut interp, "P[i, k] = concat(A[i, x] B[i, y])");
    let pr: Vec<f64> = (0..n)
        .flat_map(|i| (0..d).flat_map(move |x| (0..e).map(move |yy| (i, x, yy))))
        .map(|(i, x, yy)| a[i * d + x] * bm[i * e + yy])
        .collect();
    assert_close(&read(&mut interp, "P", &[n, d * e]), &pr);
    // `+=` adds to the existing tensor.
    exec(&mut interp, "P[i, k] += concat(A[i, x] B[i, y])");
    let twice: Vec<f64> = pr.iter().map(|v| 2.0 * v).collect();
    assert_close(&read(&mut interp, "P", &[n, d * e]), &twice);
}

#[test]
fn concat_misuse_is_a_clear_error_at_its_place() {
    let prelude = "let A = ones([2, 3])\nlet C = ones([4, 3])\n";
    let cases = [
        (
            "Y[p, k] = concat(A[p, k], A[p, k])",
            "every left-side index here appears in an argument",
            "3:1",
        ),
        (
            "Y[p, k, m] = concat(A[p, h])",
            "several are unused here (`k`, `m`), so which one is ambiguous",
            "3:1",
        ),
        (
            "Y[p, k] max= concat(A[p, h])",
            "`concat` keeps every index of its arguments, so `max=` has nothing to project; write `=`",
            "3:14",
        ),
        (
            "Y[p, k] = relu(concat(A[p, h]))",
            "not supported yet: `concat` inside a larger expression of a tensor equation",
            "3:16",
        ),
        (
            "Y[p, k] = concat(A[p, h], C[p, h])",
            "index `p` has size 2 in argument 1 of `concat` but size 4 in argument 2",
            "3:27",
        ),
        (
            "Y[p, k] = concat()",
            "`concat` in a tensor equation needs at least one argument",
            "3:11",
        ),
        (
            "Y[p, 2*k] = concat(A[p, h])",
            "not supported yet: constant indices, index arithmetic, slices or `.` marks on the left side of a `concat` equation",
            "3:1",
        ),
        (
            "Y[p, k] = concat(A[p, h], dim: 1)",
            "`concat` in a tensor equation takes no named arguments",
            "3:27",
        ),
    ];
    for (line, needle, at) in cases {
        common::assert_error(&format!("{prelude}{line}\n"), needle, at);
    }
}

// ---- Top-level equation sets (fixed-point semantics) ----

/// Transitive closure as a recursive numeric equation on random graphs, against a naive
/// reachability loop (exact: 0/1 results).
#[test]
fn equation_set_closure_matches_naive_reachability() {
    for seed in 1..4u64 {
        let mut rng = Rng::new(seed);
        let n = 10;
        let edges: Vec<f64> = (0..n * n)
            .map(|_| if rng.next() > 0.7 { 1.0 } else { 0.0 })
            .collect();
        let mut interp = repl();
        exec(
            &mut interp,
            &format!("let E = tensor({})", literal(&edges, &[n, n])),
        );
        exec(
            &mut interp,
            "Reach[x, z] = step(E[x, z] + E[x, y] Reach[y, z])",
        );
        let got = read(&mut interp, "Reach", &[n, n]);
        let mut reach: Vec<bool> = edges.iter().map(|&e| e > 0.0).collect();
        loop {
            let mut changed = false;
            for x in 0..n {
                for y in 0..n {
                    for z in 0..n {
                        if reach[x * n + y] && edges[y * n + z] > 0.0 && !reach[x * n + z] {
                            reach[x * n + z] = true;
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let want: Vec<f64> = reach.iter().map(|&r| if r { 1.0 } else { 0.0 }).collect();
        assert_eq!(got, want, "seed {seed}");
    }
}

/// Solves the n x n system `a x = b` in f64 (Gauss-Jordan with partial pivoting).
fn solve(mut a: Vec<f64>, mut b: Vec<f64>, n: usize) -> Vec<f64> {
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs()))
            .unwrap();
        for k in 0..n {
            a.swap(c * n + k, p * n + k);
        }
        b.swap(c, p);
        for r in 0..n {
            if r != c {
                let f = a[r * n + c] / a[c * n + c];
                for k in 0..n {
                    a[r * n + k] -= f * a[c * n + k];
                }
                b[r] -= f * b[c];
            }
        }
    }
    (0..n).map(|i| b[i] / a[i * n + i]).collect()
}

/// PageRank on a random column-stochastic matrix converges to the solution of
/// (I - d M) R = (1 - d) / n. The iteration stops when no element moves by more than 1e-6 in a
/// round, so the error is below 1e-6 d / (1 - d) ~ 6e-6 per element: tolerance 1e-4 relative.
#[test]
fn equation_set_pagerank_matches_linear_solve() {
    let mut rng = Rng::new(7);
    let n = 6;
    let raw: Vec<f64> = (0..n * n).map(|_| rng.next().abs() + 0.05).collect();
    let mut m = raw.clone();
    for j in 0..n {
        let col: f64 = (0..n).map(|i| raw[i * n + j]).sum();
        for i in 0..n {
            m[i * n + j] = raw[i * n + j] / col;
        }
    }
    let mut interp = repl();
    exec(
        &mut interp,
        &format!("let M = tensor({})", literal(&m, &[n, n])),
    );
    exec(
        &mut interp,
        "R[i] = (1.0 - 0.85) / 6.0 + 0.85 * M[i, j] R[j]",
    );
    let got = read(&mut interp, "R", &[n]);
    let a: Vec<f64> = (0..n * n)
        .map(|k| f64::from(u8::from(k / n == k % n)) - 0.85 * m[k])
        .collect();
    let want = solve(a, vec![0.15 / n as f64; n], n);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-4 * w.abs(), "{got:?} vs {want:?}");
    }
}

/// A set written out of order runs in dependency order; two equations for one left side add;
/// a mutually recursive pair (a contraction) reaches the fixed point of a naive f64 iteration.
#[test]
fn equation_set_order_sum_and_mutual_recursion() {
    let mut rng = Rng::new(11);
    let mut interp = repl();
    let n = 5;
    let x = random_tensor(&mut interp, &mut rng, "X", &[n]);
    let w = random_tensor(&mut interp, &mut rng, "W", &[n, n]);
    let b = random_tensor(&mut interp, &mut rng, "B", &[n]);
    let m = random_tensor(&mut interp, &mut rng, "M", &[n, n]);
    let k = random_tensor(&mut interp, &mut rng, "K", &[n, n]);
    exec(
        &mut interp,
        "Y[i] = W[i, j] Z[j]\nZ[j] = relu(X[j])\nY[i] = B[i]\n\
         P[i] = 0.1 * M[i, j] Q[j] + X[i]\nQ[i] = 0.1 * K[i, j] P[j]",
    );
    let z: Vec<f64> = x.iter().map(|v| v.max(0.0)).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| w[i * n + j] * z[j]).sum::<f64>() + b[i])
        .collect();
    assert_close(&read(&mut interp, "Y", &[n]), &y);
    let (mut p, mut q) = (vec![0.0; n], vec![0.0; n]);
    for _ in 0..200 {
        let p2: Vec<f64> = (0..n)
            .map(|i| 0.1 * (0..n).map(|j| m[i * n + j] * q[j]).sum::<f64>() + x[i])
            .collect();
        let q2: Vec<f64> = (0..n)
            .map(|i| 0.1 * (0..n).map(|j| k[i * n + j] * p[j]).sum::<f64>())
            .collect();
        (p, q) = (p2, q2);
    }
    let got_p = read(&mut interp, "P", &[n]);
    let got_q = read(&mut interp, "Q", &[n]);
    for (g, w) in got_p.iter().chain(&got_q).zip(p.iter().chain(&q)) {
        assert!((g - w).abs() <= 1e-5, "{got_p:?} {got_q:?} vs {p:?} {q:?}");
    }
}

/// A recursive equation that never settles stops at the cap with an error naming it.
#[test]
fn equation_set_cap_is_an_error() {
    let mut interp = repl();
    exec(&mut interp, "let one = tensor([1.0, 2.0])");
    let msg = error(&mut interp, "X[i] = one[i] - X[i]");
    assert!(
        msg.contains("`X` did not converge in 1000 rounds (the cap)"),
        "{msg}"
    );
}

/// Values far above 1 converge by the relative test (float32 cannot resolve an absolute 1e-6
/// at 2e4): X = 0.5 X + C has the fixed point 2 C.
#[test]
fn equation_set_large_values_converge() {
    let mut rng = Rng::new(5);
    let mut interp = repl();
    let c: Vec<f64> = rng.vec(6).iter().map(|v| 1e4 * v).collect();
    exec(
        &mut interp,
        &format!("let C = tensor({})", literal(&c, &[6])),
    );
    exec(&mut interp, "X[i] = 0.5 * X[i] + C[i]");
    let want: Vec<f64> = c.iter().map(|v| 2.0 * v).collect();
    assert_close(&read(&mut interp, "X", &[6]), &want);
}

/// A group that overflows is an error naming the round, not a run to the cap.
#[test]
fn equation_set_overflow_is_an_error() {
    let mut interp = repl();
    exec(&mut interp, "let one = tensor([1.0, 2.0])");
    let msg = error(&mut interp, "X[i] = 2.0 * X[i] + one[i]");
    assert!(msg.contains("`X` became NaN or infinite in round"), "{msg}");
}

/// A random directed graph on `n` nodes (self-loops and cycles allowed), about `density` of the
/// n^2 pairs being edges.
fn random_graph(rng: &mut Rng, n: usize, density: f64) -> Vec<(usize, usize)> {
    (0..n * n)
        .filter(|_| (rng.next() + 1.0) / 2.0 < density)
        .map(|k| (k / n, k % n))
        .collect()
}

/// The pairs (x, z) with a non-empty path from x to z: a breadth-first search from every node.
fn bfs_closure(n: usize, edges: &[(usize, usize)]) -> BTreeSet<(usize, usize)> {
    let mut out = BTreeSet::new();
    for start in 0..n {
        let mut seen = vec![false; n];
        let mut queue: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
        queue.push_back(start);
        while let Some(x) = queue.pop_front() {
            for &(_, z) in edges.iter().filter(|e| e.0 == x) {
                if !seen[z] {
                    seen[z] = true;
                    out.insert((start, z));
                    queue.push_back(z);
                }
            }
        }
    }
    out
}

/// Same generation over a parent relation, by naive iteration of sets of tuples:
/// sg(x, y) if x and y share a parent, or their parents a and b are of the same generation.
fn naive_same_generation(parent: &[(usize, usize)]) -> BTreeSet<(usize, usize)> {
    let mut sg = BTreeSet::new();
    loop {
        let mut next = sg.clone();
        for &(p, x) in parent {
            for &(q, y) in parent {
                if p == q || sg.contains(&(p, q)) {
                    next.insert((x, y));
                }
            }
        }
        if next == sg {
            return sg;
        }
        sg = next;
    }
}

/// The 0/1 matrix `name` (n x n) of an interpreter, as the set of its 1 cells; every cell must
/// be exactly 0 or 1.
#[track_caller]
fn boolean_matrix(interp: &mut Interpreter, name: &str, n: usize) -> BTreeSet<(usize, usize)> {
    let cells = read(interp, name, &[n, n]);
    assert!(
        cells.iter().all(|&v| v == 0.0 || v == 1.0),
        "`{name}` is not 0/1: {cells:?}"
    );
    (0..n * n)
        .filter(|&k| cells[k] == 1.0)
        .map(|k| (k / n, k % n))
        .collect()
}

/// The answers of a two-variable query printed as a table (`X | Y` rows of `v<number>`).
fn answer_pairs(table: &str) -> BTreeSet<(usize, usize)> {
    let node = |c: &str| c.strip_prefix('v').and_then(|k| k.parse::<usize>().ok());
    table
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            match cells.as_slice() {
                [x, y] => Some((node(x)?, node(y)?)),
                _ => None,
            }
        })
        .collect()
}

/// The closure of one random graph three ways that must agree exactly: a top-level tensor
/// equation set iterated to its fixed point (`step` of a numeric join), the Datalog engine on the
/// same rules (as `<-` rules and in the paper's equation form over relations, on tuples and on
/// dense tensors), and a breadth-first search / naive set iteration written here.
#[test]
fn equation_set_closures_agree_with_datalog_and_plain_search() {
    let graphs = [(7, 0.2), (12, 0.1), (19, 0.08), (13, 0.3), (16, 0.05)];
    for (seed, &(n, density)) in graphs.iter().enumerate() {
        let mut rng = Rng::new(100 + seed as u64);
        let edges = random_graph(&mut rng, n, density);
        let mut matrix = vec![0.0; n * n];
        for &(x, z) in &edges {
            matrix[x * n + z] = 1.0;
        }
        let facts: String = edges
            .iter()
            .map(|(x, z)| format!("Edge(v{x}, v{z})\n"))
            .collect();
        let program = format!(
            "let E = tensor({})\n\
             Reach[x, z] = step(E[x, z] + Reach[x, y] E[y, z])\n\
             SG[x, y] = step(E[p, x] E[p, y] + E[a, x] SG[a, b] E[b, y])\n\
             {facts}\
             Path(X, Z) <- Edge(X, Z)\n\
             Path(X, Z) <- Path(X, Y), Edge(Y, Z)\n\
             PathEq(x, z) = step(Edge(x, z) + PathEq(x, y) Edge(y, z))\n\
             Same(X, Y) <- Edge(P, X), Edge(P, Y)\n\
             Same(X, Y) <- Edge(A, X), Same(A, B), Edge(B, Y)\n",
            literal(&matrix, &[n, n])
        );
        let reach = bfs_closure(n, &edges);
        let same = naive_same_generation(&edges);
        assert!(
            reach.len() > n / 2 && same.len() > n / 2,
            "seed {seed}: a graph with something to find ({} edges)",
            edges.len()
        );
        for mode in [tl_logic::TensorMode::Sparse, tl_logic::TensorMode::Dense] {
            let dir = common::temp_dir("closure");
            let path = common::write(&dir, "closure.tl", &program);
            let out = SharedBuffer::new();
            let mut interp = Interpreter::with_output(Options::default(), Box::new(out.clone()));
            interp.set_logic_tensor_mode(mode);
            if let Err(d) = interp.run_file(&path) {
                panic!(
                    "{}",
                    d.iter()
                        .map(|d| d.render(interp.sources()))
                        .collect::<String>()
                );
            }
            let context = format!("graph {seed} (n = {n}, {} edges), {mode:?}", edges.len());
            assert_eq!(boolean_matrix(&mut interp, "Reach", n), reach, "{context}");
            assert_eq!(boolean_matrix(&mut interp, "SG", n), same, "{context}");
            for (goal, want) in [
                ("Path(X, Y)", &reach),
                ("PathEq(X, Y)", &reach),
                ("Same(X, Y)", &same),
            ] {
                let before = out.contents().len();
                exec(&mut interp, &format!("query {goal}"));
                let table = out.contents()[before..].to_string();
                assert_eq!(&answer_pairs(&table), want, "{context}: {goal}\n{table}");
            }
        }
    }
}

// ---- Relation embeddings: `relation R(x: A, y: B) embed float32[Da, Db]` ----

/// `sum over tuples t of prod_c Emb_c[t_c, i_c]` in f64: the embedding of a relation whose
/// column c is embedded by the row-major table `tables[c]` of width `dims[c]`.
fn naive_relation_embedding(tuples: &[Vec<usize>], tables: &[&[f64]], dims: &[usize]) -> Vec<f64> {
    let total: usize = dims.iter().product();
    let mut out = vec![0.0; total];
    for t in tuples {
        for (flat, cell) in out.iter_mut().enumerate() {
            let mut rest = flat;
            let mut term = 1.0;
            for c in (0..dims.len()).rev() {
                let i = rest % dims[c];
                rest /= dims[c];
                term *= tables[c][t[c] * dims[c] + i];
            }
            *cell += term;
        }
    }
    out
}

#[test]
fn relation_embeddings_sum_the_outer_products_of_their_tuples() {
    let (na, da, nb, db) = (7, 5, 4, 3);
    let mut interp = repl();
    let mut rng = Rng::new(31);
    exec(&mut interp, "seed(11)");
    let a_names: Vec<String> = (0..na).map(|k| format!("a{k}")).collect();
    let b_names: Vec<String> = (0..nb).map(|k| format!("b{k}")).collect();
    exec(
        &mut interp,
        &format!(
            "embedding A {{ entities: {{{}}}, dimension: {da} }}",
            a_names.join(", ")
        ),
    );
    exec(
        &mut interp,
        &format!(
            "embedding B {{ entities: {{{}}}, dimension: {db} }}",
            b_names.join(", ")
        ),
    );
    let a = read(&mut interp, "A", &[na, da]);
    let b = read(&mut interp, "B", &[nb, db]);
    exec(&mut interp, "let D = 5");
    exec(&mut interp, "relation R(x: A, y: B) embed float32[D, ?]");
    exec(
        &mut interp,
        "relation Tri(x: A, y: B, z: A) embed float32[D, 3, D]",
    );
    let pick = |rng: &mut Rng, n: usize| ((rng.next() + 1.0) / 2.0 * n as f64) as usize % n;
    let mut pairs: Vec<Vec<usize>> = Vec::new();
    let mut triples: Vec<Vec<usize>> = Vec::new();
    for _ in 0..9 {
        let (x, y, z) = (pick(&mut rng, na), pick(&mut rng, nb), pick(&mut rng, na));
        exec(&mut interp, &format!("R({}, {})", a_names[x], b_names[y]));
        exec(
            &mut interp,
            &format!("Tri({}, {}, {})", a_names[x], b_names[y], a_names[z]),
        );
        // A repeated fact is one tuple.
        if !pairs.contains(&vec![x, y]) {
            pairs.push(vec![x, y]);
        }
        if !triples.contains(&vec![x, y, z]) {
            triples.push(vec![x, y, z]);
        }
    }
    exec(&mut interp, "E[i, j] = R[i, j]");
    assert_close(
        &read(&mut interp, "E", &[da, db]),
        &naive_relation_embedding(&pairs, &[&a, &b], &[da, db]),
    );
    exec(&mut interp, "E3[i, j, k] = Tri[i, j, k]");
    assert_close(
        &read(&mut interp, "E3", &[da, db, da]),
        &naive_relation_embedding(&triples, &[&a, &b, &a], &[da, db, da]),
    );
    // The same as the paper's explicit form.
    exec(&mut interp, "Ex[i, j] = R(x, y) A[x, i] B[y, j]");
    assert_close(
        &read(&mut interp, "Ex", &[da, db]),
        &read(&mut interp, "E", &[da, db]),
    );
    // A graded query at temperature 0.3: sig((R[i, j] A[a2, i] B[y, j] - 0.5) / T).
    exec(
        &mut interp,
        "S[y] = sig((R[i, j] A[a2, i] B[y, j] - 0.5) / 0.3)",
    );
    let e = naive_relation_embedding(&pairs, &[&a, &b], &[da, db]);
    let s: Vec<f64> = (0..nb)
        .map(|y| {
            let mut score = 0.0;
            for i in 0..da {
                for j in 0..db {
                    score += e[i * db + j] * a[2 * da + i] * b[y * db + j];
                }
            }
            1.0 / (1.0 + (-(score - 0.5) / 0.3).exp())
        })
        .collect();
    assert_close(&read(&mut interp, "S", &[nb]), &s);
    // A new fact changes the embedding the next equation reads.
    exec(&mut interp, "R(a6, b0)");
    if !pairs.contains(&vec![6, 0]) {
        pairs.push(vec![6, 0]);
    }
    exec(&mut interp, "E[i, j] = R[i, j]");
    assert_close(
        &read(&mut interp, "E", &[da, db]),
        &naive_relation_embedding(&pairs, &[&a, &b], &[da, db]),
    );
}

/// A derived relation with an embedding: its tuples come from the rules, and at T = 0 with
/// orthonormal entity rows the scores read back are exactly the Datalog answers.
#[test]
fn embedded_derived_relation_at_temperature_zero_is_exact() {
    let n = 11;
    let mut interp = repl();
    let mut rng = Rng::new(32);
    exec(&mut interp, "seed(5)");
    let facts = family(&mut rng, n);
    for &(x, y) in &facts {
        exec(&mut interp, &format!("Parent(p{x}, p{y})"));
    }
    exec(
        &mut interp,
        "embedding Person { entities: auto, dimension: 16, init: orthonormal }",
    );
    exec(&mut interp, "relation Parent(x: Person, y: Person)");
    exec(
        &mut interp,
        "relation Grandparent(x: Person, y: Person) embed float32[16, 16]",
    );
    exec(
        &mut interp,
        "Grandparent(X, Z) <- Parent(X, Y), Parent(Y, Z)",
    );
    exec(&mut interp, "let T = 0");
    exec(
        &mut interp,
        "G[x, z] = sig((Grandparent[i, k] Person[x, i] Person[z, k] - 0.5) / T)",
    );
    // `auto` numbers the people in the order first stated.
    let mut order: Vec<usize> = Vec::new();
    for &(x, y) in &facts {
        for p in [x, y] {
            if !order.contains(&p) {
                order.push(p);
            }
        }
    }
    let m = order.len();
    let person = read(&mut interp, "Person", &[m, 16]);
    let mut grand = BTreeSet::new();
    for &(a, b) in &facts {
        for &(c, d) in &facts {
            if b == c {
                let row = |p: usize| order.iter().position(|&o| o == p).unwrap();
                grand.insert((row(a), row(d)));
            }
        }
    }
    assert!(grand.len() >= 4, "a tree deep enough to test: {grand:?}");
    assert_eq!(boolean_matrix(&mut interp, "G", m), grand);
    // The embedding itself against f64 over the derived tuples.
    exec(&mut interp, "EG[i, k] = Grandparent[i, k]");
    let tuples: Vec<Vec<usize>> = grand.iter().map(|&(x, z)| vec![x, z]).collect();
    assert_close(
        &read(&mut interp, "EG", &[16, 16]),
        &naive_relation_embedding(&tuples, &[&person, &person], &[16, 16]),
    );
}

#[test]
fn relation_embedding_misuse_is_a_clear_error() {
    let prelude = "embedding A { entities: {a0, a1, a2}, dimension: 5 }\n\
                   embedding B { entities: {b0, b1}, dimension: 3 }\n";
    let cases = [
        (
            "relation R(x: Nope, y: A) embed float32[5, 5]",
            "the type of `x` must name an embedding space, but no `embedding Nope { .. }` is declared before it",
            "3:12",
        ),
        (
            "relation R(x, y: A) embed float32[5, 5]",
            "so `x` needs a type naming an embedding space",
            "3:12",
        ),
        (
            "relation R(x: A, y: B) embed float32[5, 4]",
            "the embedding `float32[5, 4]` of relation `R` says 4 for `y`, but the embedding space `B` of `y` has dimension 3",
            "3:30",
        ),
        (
            "relation R(x: A, y: B) embed float32[D, D]",
            "says `D` for `y`, and `D` is 5 for `x`, but the embedding space `B` of `y` has dimension 3",
            "3:30",
        ),
        (
            "relation R(x: A, y: B) embed float32[5]",
            "relation `R` has 2 arguments, so its embedding has one dimension per argument, but `float32[5]` has 1",
            "3:30",
        ),
        (
            "relation R(x: A, y: B) embed int64[5, 3]",
            "the embedding of relation `R` is a float32 tensor, not `int64`",
            "3:30",
        ),
        (
            "relation R(x: A, y: B) embed float32[5, 3]\nR[i, j] = A[0, i] B[0, j]",
            "`R` is a relation with an embedding, which its tuples define",
            "4:1",
        ),
        (
            "relation R(x: A, y: B) embed float32[5, 3]\nR(a1, zed)\nE[i, j] = R[i, j]",
            "`R` holds a tuple with `zed`, which is not an entity of the embedding `B`",
            "5:11",
        ),
    ];
    for (src, needle, at) in cases {
        common::assert_error(&format!("{prelude}{src}\n"), needle, at);
    }
}

// ---------------------------------------------------------------------------------------
// Learning through equation sets (paper section 3.3): `learn { objective: Loss, .. }` after
// top-level equations differentiates the loss equation through the whole set.
//
// The reference gradient is central finite differences of the program's own loss (each run a
// fresh interpreter with the parameters given as data). The runtime has no float64 tensors,
// so the loss is a float32 value and the step is the exact f64 difference of two float32
// parameters: with a step of 1e-2 the rounding contributes about 1e-5 relative, and the
// tolerance is ||analytic - numeric|| / ||numeric|| <= 2e-3, as in tl-tensor's gradient
// checks. The analytic gradient is read back from one plain SGD step with lr 1: W' = W - g.

const GRAD_STEP: f64 = 1e-2;
const GRAD_TOL: f64 = 2e-3;

/// Values rounded to float32 (what the program holds), as f64.
fn as_f32(values: &[f64]) -> Vec<f64> {
    values.iter().map(|&v| v as f32 as f64).collect()
}

/// The loss `Loss` of `model` with the parameters given as data.
fn loss_with(data: &str, model: &str, params: &[(&str, Vec<f64>, Vec<usize>)]) -> f64 {
    let mut interp = repl();
    let mut src = data.to_string();
    for (name, values, shape) in params {
        src.push_str(&format!(
            "tensor {name}: float32{shape:?} = tensor({})\n",
            literal(values, shape)
        ));
    }
    src.push_str(model);
    exec(&mut interp, &src);
    read(&mut interp, "Loss", &[])[0]
}

/// Checks the gradient of `Loss` (defined by the equations `model`) with respect to every
/// parameter, as `learn` computes it, against central finite differences.
fn check_equation_gradient(data: &str, model: &str, params: &[(&str, Vec<f64>, Vec<usize>)]) {
    let mut interp = repl();
    let mut src = data.to_string();
    for (name, values, shape) in params {
        src.push_str(&format!(
            "tensor {name}: float32{shape:?} learnable = tensor({})\n",
            literal(values, shape)
        ));
    }
    src.push_str(model);
    src.push_str("learn { objective: Loss, optimizer: sgd(lr: 1.0), epochs: 1, quiet: true }\n");
    exec(&mut interp, &src);
    for (p, (name, values, shape)) in params.iter().enumerate() {
        let after = read(&mut interp, name, shape);
        let analytic: Vec<f64> = values.iter().zip(&after).map(|(w, a)| w - a).collect();
        let mut numeric = Vec::with_capacity(values.len());
        for (j, value) in values.iter().enumerate() {
            let at = |delta: f64| {
                let mut ps: Vec<(&str, Vec<f64>, Vec<usize>)> = params.to_vec();
                ps[p].1[j] = (value + delta) as f32 as f64;
                let h = ps[p].1[j];
                (loss_with(data, model, &ps), h)
            };
            let ((plus, hp), (minus, hm)) = (at(GRAD_STEP), at(-GRAD_STEP));
            numeric.push((plus - minus) / (hp - hm));
        }
        let diff: f64 = analytic
            .iter()
            .zip(&numeric)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = numeric.iter().map(|b| b * b).sum::<f64>().sqrt();
        assert!(norm > 1e-3, "{name}: the loss barely depends on it");
        let rel = diff / norm;
        assert!(
            rel <= GRAD_TOL,
            "{name}: relative error {rel:.2e} > {GRAD_TOL:.0e}\nanalytic {analytic:?}\nnumeric  {numeric:?}"
        );
    }
}

/// A two-layer model whose weight `W` is used by two equations (its gradient is the sum over
/// both uses), a sigmoid output and a squared-error loss equation with no left-side indices.
#[test]
fn learn_gradient_through_an_equation_set_matches_finite_differences() {
    let mut rng = Rng::new(21);
    let x = as_f32(&rng.vec(15));
    let t: Vec<f64> = as_f32(&rng.vec(5).iter().map(|v| 0.5 + 0.4 * v).collect::<Vec<_>>());
    let data = format!(
        "tensor X: float32[5, 3] = tensor({})\ntensor T: float32[5] = tensor({})\n",
        literal(&x, &[5, 3]),
        literal(&t, &[5])
    );
    let model = "H[n, k] = tanh(X[n, j] W[j, k])\n\
                 Z[n, k] = tanh(H[n, j] W[j, k] + X[n, k])\n\
                 Y[n] = sig(Z[n, k] V[k] + c[0])\n\
                 Loss = (Y[n] - T[n]) ** 2\n";
    let w = as_f32(&rng.vec(9));
    let v = as_f32(&rng.vec(3).iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    let c = as_f32(&[0.5 * rng.next()]);
    check_equation_gradient(
        &data,
        model,
        &[("W", w, vec![3, 3]), ("V", v, vec![3]), ("c", c, vec![1])],
    );
}

/// A recursive group (H reads itself) is iterated to its fixed point; the gradient flows back
/// through every round (the fixed point's gradient, up to the convergence tolerance).
#[test]
fn learn_gradient_through_a_recursive_group_matches_finite_differences() {
    let mut rng = Rng::new(22);
    let b = as_f32(&rng.vec(4));
    let t = as_f32(&rng.vec(4));
    let data = format!(
        "tensor B: float32[4] = tensor({})\ntensor T: float32[4] = tensor({})\n",
        literal(&b, &[4]),
        literal(&t, &[4])
    );
    let model = "H[i] = B[i] + tanh(A[i, j] H[j])\n\
                 Loss = (H[i] - T[i]) ** 2\n";
    // Entries below 0.3 in magnitude: the iteration contracts.
    let a = as_f32(&rng.vec(16).iter().map(|v| 0.3 * v).collect::<Vec<_>>());
    check_equation_gradient(&data, model, &[("A", a, vec![4, 4])]);
}

/// Logistic regression written as equations, parameters declared without a value (so
/// learnable, starting at zeros), trained with Adam for 100 epochs: the learned W, b and the
/// final loss agree with the same training done in f64 on the host (PyTorch's Adam) within
/// 1e-3 relative; a `frozen` tensor and the data stay as they were.
#[test]
fn learn_logistic_regression_equations_match_an_f64_reference() {
    const N: usize = 32;
    const D: usize = 3;
    const EPOCHS: usize = 100;
    const LR: f64 = 0.05;
    let mut rng = Rng::new(23);
    let x = as_f32(&rng.vec(N * D).iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    let w_true = [1.5, -2.0, 0.5];
    let t: Vec<f64> = (0..N)
        .map(|n| {
            let s: f64 = (0..D).map(|j| x[n * D + j] * w_true[j]).sum::<f64>() + 0.8 * rng.next();
            if s > 0.0 { 1.0 } else { 0.0 }
        })
        .collect();
    let mut interp = repl();
    exec(
        &mut interp,
        &format!(
            "tensor X: float32[{N}, {D}] = tensor({})\n\
             tensor T: float32[{N}] = tensor({})\n\
             tensor W: float32[{D}]\n\
             tensor b: float32[1]\n\
             tensor F: float32[2] frozen\n\
             Y[n] = sig(X[n, j] W[j] + b[0] + F[0])\n\
             Loss avg= -(T[n] * log(Y[n]) + (1.0 - T[n]) * log(1.0 - Y[n]))\n\
             learn {{ objective: Loss, optimizer: adam(lr: {LR}), epochs: {EPOCHS}, quiet: true }}\n",
            literal(&x, &[N, D]),
            literal(&t, &[N])
        ),
    );

    // The reference: the same model, loss and optimizer in f64.
    let mut p = vec![0.0f64; D + 1]; // W, then b
    let (mut m, mut v) = (vec![0.0; D + 1], vec![0.0; D + 1]);
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    let forward = |p: &[f64]| -> Vec<f64> {
        (0..N)
            .map(|n| {
                let z: f64 = (0..D).map(|j| x[n * D + j] * p[j]).sum::<f64>() + p[D];
                1.0 / (1.0 + (-z).exp())
            })
            .collect()
    };
    for step in 1..=EPOCHS {
        let y = forward(&p);
        let mut g = [0.0; D + 1];
        for n in 0..N {
            let r = (y[n] - t[n]) / N as f64;
            for j in 0..D {
                g[j] += r * x[n * D + j];
            }
            g[D] += r;
        }
        for k in 0..=D {
            m[k] = b1 * m[k] + (1.0 - b1) * g[k];
            v[k] = b2 * v[k] + (1.0 - b2) * g[k] * g[k];
            let mh = m[k] / (1.0 - b1.powi(step as i32));
            let vh = v[k] / (1.0 - b2.powi(step as i32));
            p[k] -= LR * mh / (vh.sqrt() + eps);
        }
    }
    let y = forward(&p);
    let loss: f64 = (0..N)
        .map(|n| -(t[n] * y[n].ln() + (1.0 - t[n]) * (1.0 - y[n]).ln()))
        .sum::<f64>()
        / N as f64;

    let close = |got: &[f64], want: &[f64], what: &str| {
        let diff: f64 = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>();
        let norm: f64 = want.iter().map(|b| b * b).sum::<f64>();
        assert!(
            diff.sqrt() <= 1e-3 * norm.sqrt(),
            "{what}: {got:?} vs the f64 reference {want:?}"
        );
    };
    close(&read(&mut interp, "W", &[D]), &p[..D], "W");
    close(&read(&mut interp, "b", &[1]), &p[D..], "b");
    close(&read(&mut interp, "Loss", &[]), &[loss], "Loss");
    // The loss fell from log 2 (all zeros) to below 0.45 (the reference reaches about 0.3).
    assert!(loss < 0.45, "reference loss {loss}");
    assert_eq!(read(&mut interp, "F", &[2]), vec![0.0, 0.0]);
    assert_eq!(read(&mut interp, "T", &[N]), t);
}
