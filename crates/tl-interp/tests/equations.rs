//! Tensor equations as statements (`Y[i, k] = relu(X[i, j] W[j, k])`): each result is compared
//! with a naive f64 loop over seeded random inputs (f32 tolerance 1e-5 relative, TARGETS.md),
//! and each error case with its message.

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
            "Y[i] = A[i, j+1]",
            "not supported yet: index arithmetic in tensor equations",
        ),
        (
            "Y[i] = A[i, 0:2]",
            "not supported yet: slices in tensor equations",
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
            "not supported yet: calling `gelu` in a tensor equation (the functions are step, sig, sigmoid, relu, exp, log, tanh, sqrt, abs, neg and softmax)",
        ),
        (
            "Y[i] = A[i, j] < 1",
            "not supported yet: the operator `<` in tensor equations",
        ),
        (
            "Y[i, i] = A[i, i]",
            "not supported yet: a repeated index on the left side of a tensor equation",
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
