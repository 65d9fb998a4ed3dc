//! Reverse-mode automatic differentiation.
//!
//! The graph lives in the tensors: a tensor made by [`Tensor::requires_grad`] is a *leaf*, and
//! every differentiable op whose input is tracked gives its output a node naming the op and
//! its inputs (nothing is recorded when no input is tracked, so ordinary programs pay one
//! branch per op). [`backward`] walks the graph from a one-element loss in reverse
//! topological order. Every gradient formula is written with `Tensor` ops (no host loops),
//! so it runs on whichever backend holds the tensors. Scatters (the gradients of
//! `embedding` and `index_select`) go through [`crate::Backend::index_add`], whose default is
//! a one-hot product (a direct kernel on the CPU); `gather`'s is a one-hot compare and sum.
//!
//! `attention` on a tracked input is computed from matmul/softmax ops (`ops::nn`), so its
//! gradient is theirs. Ops with no gradient here (`%`, in-place writes) fail with
//! "not supported yet: the gradient of ..." when given a tracked input, rather than
//! silently cutting the graph.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::bail;
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use crate::tensor::Tensor;

/// One recorded op: what it was, its inputs (tensors that may carry their own nodes) and its
/// output (kept without a node, so that the graph has no cycles).
pub(crate) struct Node {
    id: u64,
    op: Op,
    inputs: Vec<Tensor>,
    output: Tensor,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({}, {:?})", self.id, self.op.name())
    }
}

/// The differentiable ops. Parameters are what the backward formula needs beyond the
/// inputs and the output.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Leaf,
    Unary(UnaryOp),
    Binary(BinaryOp),
    Cast,
    Clamp(Option<f64>, Option<f64>),
    /// Inputs: cond, a, b.
    Where,
    Reduce(ReduceOp, Vec<usize>),
    /// reshape, view, flatten, squeeze, unsqueeze, contiguous: the input's shape is enough.
    Reshape,
    Permute(Vec<usize>),
    BroadcastTo,
    Slice {
        dim: usize,
        start: usize,
        step: usize,
    },
    /// `select`: a slice of one element with the dimension removed.
    Select {
        dim: usize,
        index: usize,
    },
    Concat(usize),
    Repeat(Vec<usize>),
    /// Inputs: x, index (int64).
    Gather(usize),
    /// Inputs: x, index (int64).
    IndexSelect(usize),
    /// Inputs: table, ids.
    Embedding,
    Matmul,
    /// Inputs: x, w[, b].
    Linear,
    /// Resolved labels of each operand (one per dim, repeats allowed) and of the output.
    Einsum(Vec<Vec<u32>>, Vec<u32>),
    Softmax(usize),
    LogSoftmax(usize),
    /// Inputs: x, w.
    RmsNorm(f64),
    /// Inputs: x[, w][, b].
    LayerNorm {
        eps: f64,
        weight: bool,
        bias: bool,
    },
    SiluMul,
    /// Rotary embedding (`Tensor::rope`/`rope_neox`): a rotation of each pair, whose
    /// gradient is the inverse rotation.
    Rope {
        seq_dim: Option<usize>,
        pos: usize,
        theta: f64,
        neox: bool,
    },
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Leaf => "leaf",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Cast => "cast",
            Op::Clamp(..) => "clamp",
            Op::Where => "where",
            Op::Reduce(r, _) => r.name(),
            Op::Reshape => "reshape",
            Op::Permute(_) => "permute",
            Op::BroadcastTo => "broadcast_to",
            Op::Slice { .. } => "slice",
            Op::Select { .. } => "select",
            Op::Concat(_) => "concat",
            Op::Repeat(_) => "repeat",
            Op::Gather(_) => "gather",
            Op::IndexSelect(_) => "index_select",
            Op::Embedding => "embedding",
            Op::Matmul => "matmul",
            Op::Linear => "linear",
            Op::Einsum(..) => "einsum",
            Op::Softmax(_) => "softmax",
            Op::LogSoftmax(_) => "log_softmax",
            Op::RmsNorm(_) => "rms_norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::SiluMul => "silu_mul",
            Op::Rope { .. } => "rope",
        }
    }
}

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(true) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// While alive, ops record nothing on this thread (used by the backward pass itself and by
/// optimizer updates). Recording resumes when it is dropped.
pub struct NoGradGuard {
    previous: bool,
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        ENABLED.with(|e| e.set(self.previous));
    }
}

/// Turns recording off on this thread until the guard is dropped.
pub fn no_grad() -> NoGradGuard {
    let previous = ENABLED.with(|e| e.replace(false));
    NoGradGuard { previous }
}

/// True when an op on `inputs` would be recorded (recording is on and one is tracked).
pub(crate) fn is_recording(inputs: &[&Tensor]) -> bool {
    tracking(inputs)
}

fn tracking(inputs: &[&Tensor]) -> bool {
    ENABLED.with(|e| e.get()) && inputs.iter().any(|t| t.grad_node().is_some())
}

/// `out` with a node for `op` when an input is tracked; `out` unchanged otherwise. Integer
/// and bool outputs are never tracked.
pub(crate) fn record(out: Tensor, inputs: &[&Tensor], op: impl FnOnce() -> Op) -> Tensor {
    if !tracking(inputs) || !out.dtype().is_float() {
        return out;
    }
    let node = Node {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        op: op(),
        inputs: inputs.iter().map(|t| (*t).clone()).collect(),
        output: out.without_node(),
    };
    out.with_node(Arc::new(node))
}

/// [`record`] for a fallible op.
pub(crate) fn record_ok(
    out: Result<Tensor>,
    inputs: &[&Tensor],
    op: impl FnOnce() -> Op,
) -> Result<Tensor> {
    out.map(|t| record(t, inputs, op))
}

/// Fails when `name` (an op with no gradient) is given a tracked input.
pub(crate) fn refuse(name: &str, inputs: &[&Tensor]) -> Result<()> {
    if tracking(inputs) {
        bail!("not supported yet: the gradient of {name} (it was applied to a learnable tensor)");
    }
    Ok(())
}

impl Tensor {
    /// A leaf of a new graph: the same values, and every differentiable op applied to it
    /// (while recording is on) is recorded for [`backward`].
    pub fn requires_grad(&self) -> Result<Tensor> {
        if !self.dtype().is_float() {
            bail!(
                "gradients need a float tensor, got {} (cast it to float32 first)",
                self.dtype()
            );
        }
        let node = Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            op: Op::Leaf,
            inputs: Vec::new(),
            output: self.without_node(),
        };
        Ok(self.without_node().with_node(Arc::new(node)))
    }

    /// The same values with no graph (shares storage).
    pub fn detach(&self) -> Tensor {
        self.without_node()
    }

    /// True when the tensor is a leaf from [`Tensor::requires_grad`] or was computed from one.
    pub fn is_tracked(&self) -> bool {
        self.grad_node().is_some()
    }
}

fn node_key(n: &Arc<Node>) -> *const Node {
    Arc::as_ptr(n)
}

/// Gradients of the one-element tensor `loss` with respect to each tensor of `wrt` (each
/// from [`Tensor::requires_grad`], or computed from one). A tensor that `loss` does not
/// depend on gets zeros. Each gradient has its tensor's shape and dtype.
pub fn backward(loss: &Tensor, wrt: &[&Tensor]) -> Result<Vec<Tensor>> {
    gradients(loss, wrt)?
        .into_iter()
        .zip(wrt)
        .map(|(g, t)| match g {
            Some(g) => Ok(g),
            None => zeros_like(t),
        })
        .collect()
}

/// Like [`backward`], with `None` for the tensors `loss` does not depend on.
pub fn gradients(loss: &Tensor, wrt: &[&Tensor]) -> Result<Vec<Option<Tensor>>> {
    if loss.numel() != 1 {
        bail!(
            "the objective must be a single number, got a tensor of shape {:?} (reduce it with sum or mean)",
            loss.shape()
        );
    }
    let _guard = no_grad();
    let mut grads: HashMap<*const Node, Tensor> = HashMap::new();
    if let Some(root) = loss.grad_node() {
        // Reverse topological order by an iterative depth-first search.
        let mut order: Vec<Arc<Node>> = Vec::new();
        let mut seen: std::collections::HashSet<*const Node> = Default::default();
        let mut stack: Vec<(Arc<Node>, bool)> = vec![(root.clone(), false)];
        while let Some((n, done)) = stack.pop() {
            if done {
                order.push(n);
                continue;
            }
            if !seen.insert(node_key(&n)) {
                continue;
            }
            stack.push((n.clone(), true));
            for t in &n.inputs {
                if let Some(m) = t.grad_node()
                    && !seen.contains(&node_key(m))
                {
                    stack.push((m.clone(), false));
                }
            }
        }
        let seed = Tensor::full(loss.shape(), 1.0, loss.dtype()).to_device(loss.device())?;
        grads.insert(node_key(root), seed);
        // Gradients of intermediate nodes are dropped once passed on; those asked for stay.
        let wanted: std::collections::HashSet<*const Node> = wrt
            .iter()
            .filter_map(|t| t.grad_node().map(node_key))
            .collect();
        for n in order.iter().rev() {
            if n.inputs.is_empty() {
                continue;
            }
            let k = node_key(n);
            let g = if wanted.contains(&k) {
                grads.get(&k).cloned()
            } else {
                grads.remove(&k)
            };
            let Some(g) = g else {
                continue;
            };
            let input_grads = backward_op(n, &g)?;
            for (t, gi) in n.inputs.iter().zip(input_grads) {
                let (Some(m), Some(gi)) = (t.grad_node(), gi) else {
                    continue;
                };
                if gi.shape() != t.shape() {
                    bail!(
                        "internal error: the gradient of {} has shape {:?} for an input of shape {:?}",
                        n.op.name(),
                        gi.shape(),
                        t.shape()
                    );
                }
                let gi = gi.cast(t.dtype())?;
                let k = node_key(m);
                let sum = match grads.remove(&k) {
                    Some(prev) => prev.binary(BinaryOp::Add, &gi)?,
                    None => gi,
                };
                grads.insert(k, sum);
            }
        }
    }
    wrt.iter()
        .map(|t| {
            let found = t.grad_node().and_then(|n| grads.get(&node_key(n)).cloned());
            found.map(|g| g.contiguous()).transpose()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Helpers (all Tensor ops, so they run on any backend).

fn zeros_like(t: &Tensor) -> Result<Tensor> {
    zeros_on(t.shape(), t.dtype(), t)
}

fn zeros_on(shape: &[usize], dtype: DType, like: &Tensor) -> Result<Tensor> {
    Tensor::full(shape, 0.0, dtype).to_device(like.device())
}

fn scalar(v: f64, like: &Tensor) -> Tensor {
    Tensor::scalar(v, like.dtype())
}

fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.binary(BinaryOp::Mul, b)
}

fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.binary(BinaryOp::Add, b)
}

fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.binary(BinaryOp::Sub, b)
}

fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.binary(BinaryOp::Div, b)
}

fn muls(a: &Tensor, v: f64) -> Result<Tensor> {
    a.binary(BinaryOp::Mul, &scalar(v, a))
}

/// A 0/1 float mask of a bool tensor, in `like`'s dtype.
fn mask(b: Tensor, like: &Tensor) -> Result<Tensor> {
    b.cast(like.dtype())
}

/// Sums `g` down to `shape` (the reverse of NumPy broadcasting).
fn unbroadcast(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let lead = g.rank() - shape.len();
    let dims: Vec<isize> = (0..g.rank())
        .filter(|&i| i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1))
        .map(|i| i as isize)
        .collect();
    let s = if dims.is_empty() {
        g.clone()
    } else {
        g.reduce(ReduceOp::Sum, Some(&dims), true)?
    };
    let target: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
    s.reshape(&target)
}

/// `g` (reduced over `dims` of `shape`, keepdim or not) broadcast back to `shape`.
fn expand_reduced(g: &Tensor, shape: &[usize], dims: &[usize]) -> Result<Tensor> {
    let kept: Vec<isize> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if dims.contains(&i) { 1 } else { d as isize })
        .collect();
    g.reshape(&kept)?.broadcast_to(shape)
}

/// A one-hot float matrix [ids.numel(), n] of the int64 `ids`, in `dtype`.
fn one_hot(ids: &Tensor, n: usize, dtype: DType) -> Result<Tensor> {
    let classes = Tensor::arange(0.0, n as f64, 1.0, DType::I64)?
        .to_device(ids.device())?
        .reshape(&[1, n as isize])?;
    ids.reshape(&[-1, 1])?
        .binary(BinaryOp::Eq, &classes)?
        .cast(dtype)
}

/// The rows of `g` (along `dim`, one per index) added into a zero tensor whose `dim` has
/// size `n`: `out[.., index[k], ..] += g[.., k, ..]`, by the backend's scatter kernel.
fn index_add(g: &Tensor, dim: usize, index: &Tensor, n: usize) -> Result<Tensor> {
    let index = index.to_device(g.device())?.reshape(&[-1])?;
    g.backend().index_add(g, dim, &index, n)
}

/// [`crate::Backend::index_add`] by a product with a one-hot matrix: tensor ops only, so it
/// runs on any backend (the trait's default).
pub(crate) fn index_add_one_hot(
    g: &Tensor,
    dim: usize,
    index: &Tensor,
    n: usize,
) -> Result<Tensor> {
    let r = g.rank() as isize;
    let moved = g.transpose(dim as isize, r - 1)?; // [.., k]
    let hot = one_hot(index, n, g.dtype())?; // [k, n]
    moved.matmul(&hot)?.transpose(dim as isize, r - 1)
}

/// `g` placed into zeros of `shape` along `dim` at `start, start + step, ...`.
fn slice_back(
    g: &Tensor,
    shape: &[usize],
    dim: usize,
    start: usize,
    step: usize,
) -> Result<Tensor> {
    let len = g.shape()[dim];
    let size = shape[dim];
    let mut spread = g.clone();
    if step > 1 && len > 0 {
        // [.., len, ..] -> [.., len, step, ..] with zeros after each element -> [.., len*step, ..]
        let x = g.unsqueeze(dim as isize + 1)?;
        let mut zshape = x.shape().to_vec();
        zshape[dim + 1] = step - 1;
        let z = zeros_on(&zshape, g.dtype(), g)?;
        let joined = Tensor::concat(&[x, z], dim as isize + 1)?;
        let mut flat: Vec<isize> = g.shape().iter().map(|&d| d as isize).collect();
        flat[dim] = (len * step) as isize;
        spread = joined.reshape(&flat)?;
        let keep = (len * step).min(size - start);
        spread = spread.narrow(dim as isize, 0, keep)?;
    }
    let used = spread.shape()[dim];
    let mut parts = Vec::with_capacity(3);
    let piece = |n: usize| {
        let mut s = g.shape().to_vec();
        s[dim] = n;
        zeros_on(&s, g.dtype(), g)
    };
    if start > 0 {
        parts.push(piece(start)?);
    }
    parts.push(spread);
    if start + used < size {
        parts.push(piece(size - start - used)?);
    }
    Tensor::concat(&parts, dim as isize)
}

/// The inverse of a permutation.
fn inverse(perm: &[usize]) -> Vec<isize> {
    let mut inv = vec![0isize; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i as isize;
    }
    inv
}

fn shape_isize(s: &[usize]) -> Vec<isize> {
    s.iter().map(|&d| d as isize).collect()
}

// ---------------------------------------------------------------------------------------
// The backward formulas: gradient of each input given the output's gradient `g`.

fn backward_op(n: &Node, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    let x = &n.inputs;
    let y = &n.output;
    let want = |i: usize| x.get(i).is_some_and(|t| t.is_tracked());
    let one = |t: Result<Tensor>| t.map(|t| vec![Some(t)]);
    match &n.op {
        Op::Leaf => Ok(vec![]),
        Op::Unary(u) => one(unary_back(*u, &x[0], y, g)),
        Op::Binary(b) => binary_back(*b, &x[0], &x[1], y, g, want(0), want(1)),
        Op::Cast => one(g.cast(x[0].dtype())),
        Op::Clamp(lo, hi) => {
            let mut m = Tensor::full(x[0].shape(), 1.0, DType::Bool).to_device(g.device())?;
            if let Some(lo) = lo {
                m = m.binary(
                    BinaryOp::And,
                    &x[0].binary(BinaryOp::Ge, &scalar(*lo, &x[0]))?,
                )?;
            }
            if let Some(hi) = hi {
                m = m.binary(
                    BinaryOp::And,
                    &x[0].binary(BinaryOp::Le, &scalar(*hi, &x[0]))?,
                )?;
            }
            one(mul(g, &mask(m, g)?))
        }
        Op::Where => {
            let z = zeros_like(g)?;
            let ga = if want(1) {
                Some(unbroadcast(
                    &Tensor::where_cond(&x[0], g, &z)?,
                    x[1].shape(),
                )?)
            } else {
                None
            };
            let gb = if want(2) {
                Some(unbroadcast(
                    &Tensor::where_cond(&x[0], &z, g)?,
                    x[2].shape(),
                )?)
            } else {
                None
            };
            Ok(vec![None, ga, gb])
        }
        Op::Reduce(op, dims) => one(reduce_back(*op, dims, &x[0], y, g)),
        Op::Reshape => one(g.reshape(&shape_isize(x[0].shape()))),
        Op::Permute(p) => one(g.permute(&inverse(p))),
        Op::BroadcastTo => one(unbroadcast(g, x[0].shape())),
        Op::Slice { dim, start, step } => one(slice_back(g, x[0].shape(), *dim, *start, *step)),
        Op::Select { dim, index } => {
            let g1 = g.unsqueeze(*dim as isize)?;
            one(slice_back(&g1, x[0].shape(), *dim, *index, 1))
        }
        Op::Concat(dim) => {
            let mut start = 0;
            let mut out = Vec::with_capacity(x.len());
            for t in x {
                let len = t.shape()[*dim];
                out.push(Some(g.narrow(*dim as isize, start, len)?));
                start += len;
            }
            Ok(out)
        }
        Op::Repeat(repeats) => {
            let lead = repeats.len() - x[0].rank();
            let mut split = Vec::with_capacity(2 * repeats.len());
            let mut sum_dims = Vec::new();
            for (i, &r) in repeats.iter().enumerate() {
                let s = if i < lead { 1 } else { x[0].shape()[i - lead] };
                sum_dims.push(split.len() as isize);
                split.extend([r as isize, s as isize]);
            }
            let s = g
                .reshape(&split)?
                .reduce(ReduceOp::Sum, Some(&sum_dims), false)?;
            one(s.reshape(&shape_isize(x[0].shape())))
        }
        Op::Gather(dim) => {
            let d = *dim;
            let xs = x[0].shape();
            let idx = &x[1].to_device(g.device())?;
            // [.., k (at d), n (at d+1), ..]: where index picks each class
            let mut cshape = vec![1isize; idx.rank() + 1];
            cshape[d + 1] = xs[d] as isize;
            let classes = Tensor::arange(0.0, xs[d] as f64, 1.0, DType::I64)?
                .to_device(idx.device())?
                .reshape(&cshape)?;
            let hit = mask(
                idx.unsqueeze(d as isize + 1)?
                    .binary(BinaryOp::Eq, &classes)?,
                g,
            )?;
            let spread = mul(&g.unsqueeze(d as isize + 1)?, &hit)?;
            let mut acc = spread.reduce(ReduceOp::Sum, Some(&[d as isize]), false)?;
            // Pad the other dims (where the index was smaller than x) with zeros.
            for (i, &full) in xs.iter().enumerate() {
                let have = acc.shape()[i];
                if have < full {
                    let mut zs = acc.shape().to_vec();
                    zs[i] = full - have;
                    let z = zeros_on(&zs, g.dtype(), g)?;
                    acc = Tensor::concat(&[acc, z], i as isize)?;
                }
            }
            Ok(vec![Some(acc), None])
        }
        Op::IndexSelect(dim) => Ok(vec![
            Some(index_add(g, *dim, &x[1], x[0].shape()[*dim])?),
            None,
        ]),
        Op::Embedding => {
            let (v, d) = (x[0].shape()[0], x[0].shape()[1]);
            let rows = g.reshape(&[-1, d as isize])?; // [n, d]
            Ok(vec![Some(index_add(&rows, 0, &x[1], v)?), None])
        }
        Op::Matmul => matmul_back(&x[0], &x[1], g, want(0), want(1)),
        Op::Linear => {
            let (w, in_f) = (&x[1], x[1].shape()[1]);
            let out_f = w.shape()[0];
            let gx = if want(0) { Some(g.matmul(w)?) } else { None };
            let g2 = g.reshape(&[-1, out_f as isize])?;
            let gw = if want(1) {
                let x2 = x[0].reshape(&[-1, in_f as isize])?;
                Some(g2.transpose(0, 1)?.matmul(&x2)?)
            } else {
                None
            };
            let mut out = vec![gx, gw];
            if x.len() > 2 {
                // A bias [out] was added to every row; a residual once per output.
                out.push(Some(if x[2].shape() == [out_f] {
                    g2.reduce(ReduceOp::Sum, Some(&[0]), false)?
                } else {
                    g.clone()
                }));
            }
            Ok(out)
        }
        Op::Einsum(labels, output) => einsum_back(x, labels, output, g),
        Op::Rope {
            seq_dim,
            pos,
            theta,
            neox,
        } => one(rope_back(g, *seq_dim, *pos, *theta, *neox)),
        Op::Softmax(dim) => {
            let gy = mul(g, y)?;
            let s = gy.reduce(ReduceOp::Sum, Some(&[*dim as isize]), true)?;
            one(sub(&gy, &mul(y, &s)?))
        }
        Op::LogSoftmax(dim) => {
            let s = g.reduce(ReduceOp::Sum, Some(&[*dim as isize]), true)?;
            one(sub(g, &mul(&y.unary(UnaryOp::Exp)?, &s)?))
        }
        Op::RmsNorm(eps) => {
            let (xv, w) = (&x[0], &x[1]);
            let ms = mul(xv, xv)?.reduce(ReduceOp::Mean, Some(&[-1]), true)?;
            let r = add(&ms, &scalar(*eps, &ms))?.unary(UnaryOp::Rsqrt)?;
            let xhat = mul(xv, &r)?;
            let gw = mul(g, w)?;
            let m = mul(&gw, &xhat)?.reduce(ReduceOp::Mean, Some(&[-1]), true)?;
            let gx = mul(&r, &sub(&gw, &mul(&xhat, &m)?)?)?;
            let gwt = unbroadcast(&mul(g, &xhat)?, w.shape())?;
            Ok(vec![Some(gx), Some(gwt)])
        }
        Op::LayerNorm { eps, weight, bias } => {
            let xv = &x[0];
            let mu = xv.reduce(ReduceOp::Mean, Some(&[-1]), true)?;
            let xc = sub(xv, &mu)?;
            let var = mul(&xc, &xc)?.reduce(ReduceOp::Mean, Some(&[-1]), true)?;
            let r = add(&var, &scalar(*eps, &var))?.unary(UnaryOp::Rsqrt)?;
            let xhat = mul(&xc, &r)?;
            let gw = if *weight { mul(g, &x[1])? } else { g.clone() };
            let m1 = gw.reduce(ReduceOp::Mean, Some(&[-1]), true)?;
            let m2 = mul(&gw, &xhat)?.reduce(ReduceOp::Mean, Some(&[-1]), true)?;
            let gx = mul(&r, &sub(&sub(&gw, &m1)?, &mul(&xhat, &m2)?)?)?;
            let d = xv.shape()[xv.rank() - 1];
            let mut out = vec![Some(gx)];
            if *weight {
                out.push(Some(unbroadcast(&mul(g, &xhat)?, &[d])?));
            }
            if *bias {
                out.push(Some(unbroadcast(g, &[d])?));
            }
            Ok(out)
        }
        Op::SiluMul => {
            let (a, b) = (&x[0], &x[1]);
            let ga = if want(0) {
                let d = unary_back(UnaryOp::Silu, a, &a.unary(UnaryOp::Silu)?, &mul(g, b)?)?;
                Some(unbroadcast(&d, a.shape())?)
            } else {
                None
            };
            let gb = if want(1) {
                Some(unbroadcast(&mul(g, &a.unary(UnaryOp::Silu)?)?, b.shape())?)
            } else {
                None
            };
            Ok(vec![ga, gb])
        }
    }
}

fn unary_back(op: UnaryOp, x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Tensor> {
    let x = &x.cast(y.dtype())?;
    match op {
        UnaryOp::Neg => g.unary(UnaryOp::Neg),
        UnaryOp::Abs => {
            let sign = sub(
                &x.unary(UnaryOp::Step)?,
                &x.unary(UnaryOp::Neg)?.unary(UnaryOp::Step)?,
            )?;
            mul(g, &sign)
        }
        UnaryOp::Exp => mul(g, y),
        UnaryOp::Log => div(g, x),
        UnaryOp::Sqrt => div(g, &muls(y, 2.0)?),
        UnaryOp::Rsqrt => mul(g, &muls(&mul(&mul(y, y)?, y)?, -0.5)?),
        UnaryOp::Sin => mul(g, &x.unary(UnaryOp::Cos)?),
        UnaryOp::Cos => mul(g, &x.unary(UnaryOp::Sin)?.unary(UnaryOp::Neg)?),
        UnaryOp::Tanh => mul(g, &sub(&scalar(1.0, y), &mul(y, y)?)?),
        UnaryOp::Sigmoid => mul(g, &mul(y, &sub(&scalar(1.0, y), y)?)?),
        UnaryOp::Relu => mul(g, &x.unary(UnaryOp::Step)?),
        UnaryOp::Silu => {
            let s = x.unary(UnaryOp::Sigmoid)?;
            let inner = add(&scalar(1.0, x), &mul(x, &sub(&scalar(1.0, &s), &s)?)?)?;
            mul(g, &mul(&s, &inner)?)
        }
        UnaryOp::Gelu => {
            // d/dx x*Phi(x) = Phi(x) + x*phi(x); Phi(x) = gelu(x)/x (1/2 at x = 0).
            let small = x
                .unary(UnaryOp::Abs)?
                .binary(BinaryOp::Lt, &scalar(1e-6, x))?;
            let safe = Tensor::where_cond(&small, &scalar(1.0, x), x)?;
            let phi_cdf = Tensor::where_cond(&small, &scalar(0.5, x), &div(y, &safe)?)?;
            let pdf = muls(
                &mul(&muls(x, -0.5)?, x)?.unary(UnaryOp::Exp)?,
                1.0 / (2.0 * std::f64::consts::PI).sqrt(),
            )?;
            mul(g, &add(&phi_cdf, &mul(x, &pdf)?)?)
        }
        UnaryOp::Step | UnaryOp::Not => zeros_like(g),
    }
}

fn binary_back(
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    y: &Tensor,
    g: &Tensor,
    want_a: bool,
    want_b: bool,
) -> Result<Vec<Option<Tensor>>> {
    let a = &a.cast(y.dtype())?;
    let b = &b.cast(y.dtype())?;
    let (ga, gb): (Option<Tensor>, Option<Tensor>) = match op {
        BinaryOp::Add => (Some(g.clone()), Some(g.clone())),
        BinaryOp::Sub => (Some(g.clone()), Some(g.unary(UnaryOp::Neg)?)),
        BinaryOp::Mul => (
            want_a.then(|| mul(g, b)).transpose()?,
            want_b.then(|| mul(g, a)).transpose()?,
        ),
        BinaryOp::Div => (
            want_a.then(|| div(g, b)).transpose()?,
            want_b
                .then(|| div(&mul(g, y)?, b).and_then(|t| t.unary(UnaryOp::Neg)))
                .transpose()?,
        ),
        BinaryOp::Pow => (
            want_a
                .then(|| {
                    let bm1 = sub(b, &scalar(1.0, b))?;
                    mul(g, &mul(b, &a.binary(BinaryOp::Pow, &bm1)?)?)
                })
                .transpose()?,
            want_b
                .then(|| mul(g, &mul(y, &a.unary(UnaryOp::Log)?)?))
                .transpose()?,
        ),
        BinaryOp::Maximum | BinaryOp::Minimum => {
            // Ties share the gradient equally, as PyTorch does.
            let cmp = if op == BinaryOp::Maximum {
                BinaryOp::Gt
            } else {
                BinaryOp::Lt
            };
            let wins = mask(a.binary(cmp, b)?, g)?;
            let ties = mask(a.binary(BinaryOp::Eq, b)?, g)?;
            let share_a = add(&wins, &muls(&ties, 0.5)?)?;
            let share_b = sub(&scalar(1.0, &share_a), &share_a)?;
            (Some(mul(g, &share_a)?), Some(mul(g, &share_b)?))
        }
        other => bail!("not supported yet: the gradient of {}", other.name()),
    };
    Ok(vec![
        ga.filter(|_| want_a)
            .map(|t| unbroadcast(&t, a.shape()))
            .transpose()?,
        gb.filter(|_| want_b)
            .map(|t| unbroadcast(&t, b.shape()))
            .transpose()?,
    ])
}

fn reduce_back(op: ReduceOp, dims: &[usize], x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Tensor> {
    let shape = x.shape();
    let ge = expand_reduced(g, shape, dims)?;
    match op {
        ReduceOp::Sum => ge.contiguous(),
        ReduceOp::Mean => {
            let count: usize = dims.iter().map(|&d| shape[d]).product();
            muls(&ge, 1.0 / count.max(1) as f64)
        }
        ReduceOp::Max | ReduceOp::Min => {
            // Split among ties, as PyTorch does for a full reduction.
            let ye = expand_reduced(y, shape, dims)?;
            let hit = mask(x.binary(BinaryOp::Eq, &ye)?, g)?;
            let dims_i: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
            let count = hit.reduce(ReduceOp::Sum, Some(&dims_i), true)?;
            mul(&ge, &div(&hit, &count)?)
        }
        ReduceOp::Prod => {
            // d prod / d x_i is the product of the other elements of its group. Counting the
            // zeros of each group keeps that exact where x has zeros: with none it is
            // prod / x_i; with one, the product of the nonzeros at the zero and 0 elsewhere;
            // with more, 0.
            let dims_i: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
            let is_zero = x.binary(BinaryOp::Eq, &scalar(0.0, x))?;
            let zeros = mask(is_zero.clone(), x)?.reduce(ReduceOp::Sum, Some(&dims_i), true)?;
            let nonzero = Tensor::where_cond(&is_zero, &scalar(1.0, x), x)?;
            let p = nonzero.reduce(ReduceOp::Prod, Some(&dims_i), true)?;
            let none = zeros.binary(BinaryOp::Eq, &scalar(0.0, x))?;
            let lone = zeros
                .binary(BinaryOp::Eq, &scalar(1.0, x))?
                .binary(BinaryOp::And, &is_zero)?;
            let at_lone = Tensor::where_cond(&lone, &p, &scalar(0.0, x))?;
            let others = Tensor::where_cond(&none, &div(&p, &nonzero)?, &at_lone)?;
            mul(&ge, &others.cast(g.dtype())?)
        }
    }
}

/// The gradient of `rope`: each pair was rotated by R(angle), so the gradient is rotated by
/// R(angle)^T = R(-angle). That is the same kernel applied to the gradient with the second
/// element of every pair negated, then negated again: R (a, -b) = (a c + b s, a s - b c).
fn rope_back(
    g: &Tensor,
    seq_dim: Option<usize>,
    pos: usize,
    theta: f64,
    neox: bool,
) -> Result<Tensor> {
    let d = g.shape()[g.rank() - 1];
    let mut pairs: Vec<isize> = shape_isize(&g.shape()[..g.rank() - 1]);
    // Adjacent pairs (x[2i], x[2i+1]) are [.., d/2, 2]; NeoX's (x[i], x[i+d/2]) are [.., 2, d/2].
    let signs = if neox {
        pairs.extend([2, d as isize / 2]);
        Tensor::from_f32(vec![1.0, -1.0], &[2, 1])?
    } else {
        pairs.extend([d as isize / 2, 2]);
        Tensor::from_f32(vec![1.0, -1.0], &[2])?
    };
    let signs = signs.cast(g.dtype())?.to_device(g.device())?;
    let full = shape_isize(g.shape());
    let flip = |t: &Tensor| -> Result<Tensor> { mul(&t.reshape(&pairs)?, &signs)?.reshape(&full) };
    let rotated = g
        .backend()
        .rope(&flip(&g.contiguous()?)?, seq_dim, pos, theta, neox)?;
    flip(&rotated)
}

fn matmul_back(
    a: &Tensor,
    b: &Tensor,
    g: &Tensor,
    want_a: bool,
    want_b: bool,
) -> Result<Vec<Option<Tensor>>> {
    // Work with matrices: [k] -> [1, k] (left) and [k] -> [k, 1] (right).
    let a2 = if a.rank() == 1 {
        a.unsqueeze(0)?
    } else {
        a.clone()
    };
    let b2 = if b.rank() == 1 {
        b.unsqueeze(-1)?
    } else {
        b.clone()
    };
    let mut g2 = g.clone();
    if a.rank() == 1 {
        g2 = g2.unsqueeze(if b.rank() == 1 { 0 } else { -2 })?;
    }
    if b.rank() == 1 {
        g2 = g2.unsqueeze(-1)?;
    }
    let ga = if want_a {
        let full = g2.matmul(&b2.transpose(-1, -2)?)?;
        Some(unbroadcast(&full, a2.shape())?.reshape(&shape_isize(a.shape()))?)
    } else {
        None
    };
    let gb = if want_b {
        let full = a2.transpose(-1, -2)?.matmul(&g2)?;
        Some(unbroadcast(&full, b2.shape())?.reshape(&shape_isize(b.shape()))?)
    } else {
        None
    };
    Ok(vec![ga, gb])
}

/// The gradient of an einsum operand is an einsum of the output's gradient and the other
/// operands, written to the operand's labels. Labels only that operand uses (summed inside
/// it) are broadcast back; size-1 `...` dims that were broadcast are summed.
fn einsum_back(
    x: &[Tensor],
    labels: &[Vec<u32>],
    output: &[u32],
    g: &Tensor,
) -> Result<Vec<Option<Tensor>>> {
    // Letters for every label (ellipsis labels get unused letters).
    let mut letter: HashMap<u32, char> = HashMap::new();
    let mut free = ('a'..='z').chain('A'..='Z').filter(|c| {
        !labels
            .iter()
            .flatten()
            .chain(output)
            .any(|&l| l < 256 && l as u8 as char == *c)
    });
    for &l in labels.iter().flatten().chain(output) {
        if let std::collections::hash_map::Entry::Vacant(e) = letter.entry(l) {
            let c = if l < 256 {
                l as u8 as char
            } else {
                match free.next() {
                    Some(c) => c,
                    None => {
                        bail!("not supported yet: the gradient of an einsum with this many indices")
                    }
                }
            };
            e.insert(c);
        }
    }
    let word = |ls: &[u32]| ls.iter().map(|l| letter[l]).collect::<String>();
    let mut sizes: HashMap<u32, usize> = HashMap::new();
    for (t, ls) in x.iter().zip(labels) {
        for (&l, &n) in ls.iter().zip(t.shape()) {
            let e = sizes.entry(l).or_insert(n);
            *e = (*e).max(n);
        }
    }
    let mut out = Vec::with_capacity(x.len());
    for (i, t) in x.iter().enumerate() {
        if !t.is_tracked() {
            out.push(None);
            continue;
        }
        let mine = &labels[i];
        // Labels in order of first occurrence (a repeated label is a diagonal of the operand).
        let mut uniq: Vec<u32> = Vec::with_capacity(mine.len());
        for l in mine {
            if !uniq.contains(l) {
                uniq.push(*l);
            }
        }
        let available = |l: &u32| {
            output.contains(l)
                || labels
                    .iter()
                    .enumerate()
                    .any(|(j, ls)| j != i && ls.contains(l))
        };
        let target: Vec<u32> = uniq.iter().copied().filter(available).collect();
        let mut terms = vec![word(output)];
        let mut ops: Vec<&Tensor> = vec![g];
        for (j, o) in x.iter().enumerate() {
            if j != i {
                terms.push(word(&labels[j]));
                ops.push(o);
            }
        }
        let spec = format!("{}->{}", terms.join(","), word(&target));
        let r = Tensor::einsum(&spec, &ops)?;
        // Labels only this operand has were summed inside it: broadcast them back. A repeated
        // label gets a size-1 dim, broadcast, then masked to its diagonal.
        let mut seen: Vec<u32> = Vec::new();
        let mut view: Vec<isize> = Vec::with_capacity(mine.len());
        for l in mine {
            let first = !seen.contains(l);
            seen.push(*l);
            view.push(if first && target.contains(l) {
                sizes[l] as isize
            } else {
                1
            });
        }
        let full: Vec<usize> = mine.iter().map(|l| sizes[l]).collect();
        let mut r = r.reshape(&view)?.broadcast_to(&full)?;
        for (k, l) in mine.iter().enumerate() {
            let Some(a) = mine[..k].iter().position(|m| m == l) else {
                continue;
            };
            let n = sizes[l];
            let mut eye_shape = vec![1isize; mine.len()];
            eye_shape[a] = n as isize;
            eye_shape[k] = n as isize;
            let eye = Tensor::eye(n, g.dtype())
                .to_device(g.device())?
                .reshape(&eye_shape)?;
            r = mul(&r, &eye)?;
        }
        out.push(Some(unbroadcast(&r, t.shape())?.contiguous()?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Backend;

    /// The one-hot default of `Backend::index_add` (what a backend without its own kernel
    /// runs) against the CPU kernel, on random values and repeated indices.
    #[test]
    fn one_hot_index_add_matches_the_cpu_kernel() {
        let mut rng = crate::TensorRng::seed_from_u64(4);
        let src = Tensor::randn(&[2, 5, 3], DType::F32, &mut rng);
        let index = Tensor::from_i64(vec![3, 0, 3, 6, 1], &[5]).unwrap();
        let a = index_add_one_hot(&src, 1, &index, 7).unwrap();
        let b = crate::cpu::CPU.index_add(&src, 1, &index, 7).unwrap();
        assert_eq!(a.shape(), &[2, 7, 3]);
        for (x, y) in a.to_vec_f64().iter().zip(b.to_vec_f64()) {
            assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "{x} vs {y}");
        }
        let bad = Tensor::from_i64(vec![3, 0, 7, 6, 1], &[5]).unwrap();
        assert!(crate::cpu::CPU.index_add(&src, 1, &bad, 7).is_err());
    }
}
