//! CPU reductions. One pass over the input in its own memory order accumulates into the
//! output (f64 accumulators for floats, i64 for ints and bools), so reducing leading,
//! trailing or scattered dimensions all read memory sequentially.

use super::copy::{CpuElem, strides_without, with_elem};
use super::elementwise::{FloatElem, storage};
use super::strided::Plan;
use crate::error::Result;
use crate::layout::Layout;
use crate::ops::ReduceOp;
use crate::storage::CpuStorage;
use crate::tensor::Tensor;

/// The output shape of reducing `dims` of `shape`.
fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(d, &s)| {
            if dims.contains(&d) {
                keepdim.then_some(1)
            } else {
                Some(s)
            }
        })
        .collect()
}

/// Sum of a contiguous run with independent lanes (faster than one serial chain, and the
/// pairwise-like order is also more accurate).
#[inline]
fn sum_run<T: Copy>(v: &[T], f: impl Fn(T) -> f64) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            lanes[k] += f(c[k]);
        }
    }
    let mut s = lanes.iter().sum::<f64>();
    for &x in rest {
        s += f(x);
    }
    s
}

/// Max (`larger`) or min of a contiguous run with independent lanes; NaN if any is NaN.
#[inline]
fn extreme_run<T: Copy>(v: &[T], f: impl Fn(T) -> f64, larger: bool) -> f64 {
    let init = if larger {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    };
    let pick = |a: f64, x: f64| if larger { a.max(x) } else { a.min(x) };
    let mut lanes = [init; 8];
    let mut nan = false;
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            let x = f(c[k]);
            nan |= x.is_nan();
            lanes[k] = pick(lanes[k], x);
        }
    }
    let mut m = lanes.iter().fold(init, |a, &x| pick(a, x));
    for &x in rest {
        let x = f(x);
        nan |= x.is_nan();
        m = pick(m, x);
    }
    if nan { f64::NAN } else { m }
}

/// Folds a whole contiguous run into one accumulator.
type RunFold<'a, A, T> = dyn Fn(A, &[T]) -> A + 'a;

/// Walks `x` once and folds every element into its output slot. `acc` is indexed by
/// `out_layout` (x's shape, reduced dims with stride 0). `fold_run`, when given, folds a
/// whole contiguous run that lands in one slot at once (faster than element by element).
fn accumulate<T: Copy, A: Copy>(
    v: &[T],
    xl: &Layout,
    out_layout: &Layout,
    acc: &mut [A],
    fold: impl Fn(A, T) -> A,
    fold_run: Option<&RunFold<'_, A, T>>,
) {
    let plan = Plan::new([xl, out_layout]);
    let [sx, so] = plan.inner_strides();
    plan.for_each_run(|[ox, oo], len| match (sx, so) {
        (1, 1) => {
            for (a, &x) in acc[oo..oo + len].iter_mut().zip(&v[ox..ox + len]) {
                *a = fold(*a, x);
            }
        }
        (1, 0) if fold_run.is_some() => {
            let f = fold_run.expect("checked by the guard");
            acc[oo] = f(acc[oo], &v[ox..ox + len]);
        }
        _ => {
            for i in 0..len {
                let a = &mut acc[oo + i * so];
                *a = fold(*a, v[ox + i * sx]);
            }
        }
    });
}

/// Combines an accumulator with a run's extreme, propagating NaN.
#[inline]
fn fold_f64(a: f64, m: f64, larger: bool) -> f64 {
    if a.is_nan() || m.is_nan() {
        f64::NAN
    } else if larger {
        a.max(m)
    } else {
        a.min(m)
    }
}

fn reduce_float<T: FloatElem + CpuElem>(
    op: ReduceOp,
    v: &[T],
    xl: &Layout,
    out_layout: &Layout,
    out_numel: usize,
    count: usize,
) -> CpuStorage {
    let init = match op {
        ReduceOp::Sum | ReduceOp::Mean => 0.0,
        ReduceOp::Prod => 1.0,
        ReduceOp::Max => f64::NEG_INFINITY,
        ReduceOp::Min => f64::INFINITY,
    };
    let mut acc = vec![init; out_numel];
    let to = |x: T| x.to_f32() as f64;
    match op {
        ReduceOp::Sum | ReduceOp::Mean => {
            let run = |a: f64, r: &[T]| a + sum_run(r, to);
            accumulate(v, xl, out_layout, &mut acc, |a, x| a + to(x), Some(&run));
        }
        ReduceOp::Prod => accumulate(v, xl, out_layout, &mut acc, |a, x| a * to(x), None),
        ReduceOp::Max | ReduceOp::Min => {
            let larger = op == ReduceOp::Max;
            // NaN propagates: once the accumulator is NaN no comparison replaces it.
            let fold = move |a: f64, x: T| {
                let x = to(x);
                if x.is_nan() || (larger && x > a) || (!larger && x < a) {
                    x
                } else {
                    a
                }
            };
            let run = move |a: f64, r: &[T]| {
                let m = extreme_run(r, to, larger);
                fold_f64(a, m, larger)
            };
            accumulate(v, xl, out_layout, &mut acc, fold, Some(&run));
        }
    }
    if op == ReduceOp::Mean {
        let c = count as f64;
        acc.iter_mut().for_each(|a| *a /= c);
    }
    T::wrap(acc.into_iter().map(|a| T::from_f32(a as f32)).collect())
}

fn reduce_int<T: CpuElem>(
    op: ReduceOp,
    v: &[T],
    xl: &Layout,
    out_layout: &Layout,
    out_numel: usize,
    to: impl Fn(T) -> i64 + Copy,
) -> Vec<i64> {
    let init = match op {
        ReduceOp::Sum | ReduceOp::Mean => 0,
        ReduceOp::Prod => 1,
        ReduceOp::Max => i64::MIN,
        ReduceOp::Min => i64::MAX,
    };
    let mut acc = vec![init; out_numel];
    match op {
        ReduceOp::Sum | ReduceOp::Mean => accumulate(
            v,
            xl,
            out_layout,
            &mut acc,
            |a, x| a.wrapping_add(to(x)),
            None,
        ),
        ReduceOp::Prod => accumulate(
            v,
            xl,
            out_layout,
            &mut acc,
            |a, x| a.wrapping_mul(to(x)),
            None,
        ),
        ReduceOp::Max => accumulate(v, xl, out_layout, &mut acc, |a, x| a.max(to(x)), None),
        ReduceOp::Min => accumulate(v, xl, out_layout, &mut acc, |a, x| a.min(to(x)), None),
    }
    acc
}

/// `op` over the (sorted, distinct, in-range) `dims` of `x`.
pub(crate) fn reduce(op: ReduceOp, x: &Tensor, dims: &[usize], keepdim: bool) -> Result<Tensor> {
    let xl = x.layout();
    let kept_shape = reduced_shape(xl.shape.as_slice(), dims, true);
    let out_layout = Layout {
        shape: xl.shape.clone(),
        strides: strides_without(&kept_shape, dims),
        offset: 0,
    };
    let out_numel: usize = kept_shape.iter().product();
    let count: usize = dims.iter().map(|&d| xl.shape[d]).product();
    let out = match storage(x) {
        CpuStorage::F32(v) => reduce_float(op, v, xl, &out_layout, out_numel, count),
        CpuStorage::F16(v) => reduce_float(op, v, xl, &out_layout, out_numel, count),
        CpuStorage::BF16(v) => reduce_float(op, v, xl, &out_layout, out_numel, count),
        CpuStorage::I64(v) => {
            if op == ReduceOp::Mean {
                // Exact integer sums, then one division in f64.
                let sums = reduce_int(ReduceOp::Sum, v, xl, &out_layout, out_numel, |a| a);
                CpuStorage::F32(
                    sums.into_iter()
                        .map(|s| (s as f64 / count as f64) as f32)
                        .collect(),
                )
            } else {
                CpuStorage::I64(reduce_int(op, v, xl, &out_layout, out_numel, |a| a).into())
            }
        }
        CpuStorage::Bool(v) => {
            let to = |a: bool| a as i64;
            match op {
                ReduceOp::Mean => {
                    let sums = reduce_int(ReduceOp::Sum, v, xl, &out_layout, out_numel, to);
                    CpuStorage::F32(
                        sums.into_iter()
                            .map(|s| (s as f64 / count as f64) as f32)
                            .collect(),
                    )
                }
                // Max is "any", min is "all".
                ReduceOp::Max | ReduceOp::Min => CpuStorage::Bool(
                    reduce_int(op, v, xl, &out_layout, out_numel, to)
                        .into_iter()
                        .map(|a| a != 0)
                        .collect(),
                ),
                ReduceOp::Sum | ReduceOp::Prod => {
                    CpuStorage::I64(reduce_int(op, v, xl, &out_layout, out_numel, to).into())
                }
            }
        }
        CpuStorage::Quantized(q, ..) => {
            return Err(crate::ops::quantized_unsupported(op.name(), q.dtype()));
        }
    };
    Tensor::from_cpu_storage(out, &reduced_shape(&xl.shape, dims, keepdim))
}

/// Index of the largest (`largest`) or smallest element along `dim` (first on ties; NaN
/// counts as the extreme, as in PyTorch).
pub(crate) fn arg_reduce(x: &Tensor, dim: usize, keepdim: bool, largest: bool) -> Result<Tensor> {
    let xl = x.layout();
    let size = xl.shape[dim];
    let stride = xl.strides[dim];
    let mut outer = xl.clone();
    outer.shape.remove(dim);
    outer.strides.remove(dim);
    // `c != c` is the generic NaN test (false for ints and bools).
    #[allow(clippy::eq_op)]
    fn go<T: CpuElem + PartialOrd>(
        v: &[T],
        outer: &Layout,
        size: usize,
        stride: usize,
        largest: bool,
    ) -> Vec<i64> {
        let mut out = Vec::with_capacity(outer.numel());
        super::strided::for_each_offset(outer, |o| {
            let mut best = v[o];
            let mut at = 0usize;
            if best == best {
                for i in 1..size {
                    let c = v[o + i * stride];
                    let is_nan = c != c;
                    if is_nan || (largest && c > best) || (!largest && c < best) {
                        best = c;
                        at = i;
                        if is_nan {
                            break;
                        }
                    }
                }
            }
            out.push(at as i64);
        });
        out
    }
    let s = storage(x);
    let out = with_elem!("argmax", s, T => go::<T>(T::slice(s).expect("the dtype matches"), &outer, size, stride, largest));
    let shape = reduced_shape(&xl.shape, &[dim], keepdim);
    Tensor::from_cpu_storage(CpuStorage::I64(out.into()), &shape)
}
