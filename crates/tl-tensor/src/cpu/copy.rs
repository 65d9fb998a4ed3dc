//! CPU copies: contiguous copies of views, concatenation, gather and index_select.

use super::elementwise::storage;
use super::strided::{Plan, copy1};
use crate::bail;
use crate::error::Result;
use crate::layout::{Layout, contiguous_strides};
use crate::storage::CpuStorage;
use crate::tensor::Tensor;
use half::{bf16, f16};

/// Element types a host storage holds, with access to the typed vector.
pub(crate) trait CpuElem: Copy + Default + Send + Sync + 'static {
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    /// Mutable elements; a buffer shared with a file map is copied first (copy-on-write).
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
    fn wrap(v: Vec<Self>) -> CpuStorage;
}

macro_rules! cpu_elem {
    ($t:ty, $variant:ident) => {
        impl CpuElem for $t {
            fn slice(s: &CpuStorage) -> Option<&[Self]> {
                match s {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
                match s {
                    CpuStorage::$variant(v) => Some(v.make_mut()),
                    _ => None,
                }
            }
            fn wrap(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$variant(v.into())
            }
        }
    };
}
cpu_elem!(f32, F32);
cpu_elem!(f16, F16);
cpu_elem!(bf16, BF16);
cpu_elem!(i64, I64);
cpu_elem!(bool, Bool);

/// Runs `$body` with `$T` bound to the element type of `$storage`; returns the
/// quantized-tensor error (naming `$op`) for packed storage.
macro_rules! with_elem {
    ($op:expr, $storage:expr, $T:ident => $body:expr) => {
        match $storage {
            CpuStorage::F32(_) => {
                type $T = f32;
                $body
            }
            CpuStorage::F16(_) => {
                type $T = half::f16;
                $body
            }
            CpuStorage::BF16(_) => {
                type $T = half::bf16;
                $body
            }
            CpuStorage::I64(_) => {
                type $T = i64;
                $body
            }
            CpuStorage::Bool(_) => {
                type $T = bool;
                $body
            }
            CpuStorage::Quantized(q, ..) => {
                return Err($crate::ops::quantized_unsupported($op, q.dtype()));
            }
        }
    };
}
pub(crate) use with_elem;

fn typed<T: CpuElem>(x: &Tensor) -> &[T] {
    T::slice(storage(x)).expect("operands were checked to share one dtype")
}

/// A contiguous copy of `x`.
pub(crate) fn contiguous(x: &Tensor) -> Result<Tensor> {
    let s = storage(x);
    if let CpuStorage::Quantized(..) = s {
        return super::quantized::contiguous(x);
    }
    let out = with_elem!("contiguous", s, T => T::wrap(copy1(typed::<T>(x), x.layout())));
    Tensor::from_cpu_storage(out, x.shape())
}

/// The elements of `x` in row-major order: borrowed when the view is contiguous, else copied.
fn row_major<T: CpuElem>(x: &Tensor) -> std::borrow::Cow<'_, [T]> {
    let v = typed::<T>(x);
    let l = x.layout();
    if l.is_contiguous() {
        std::borrow::Cow::Borrowed(&v[l.offset..l.offset + l.numel()])
    } else {
        std::borrow::Cow::Owned(copy1(v, l))
    }
}

/// `xs` (one dtype, shapes equal but along `dim`) joined along `dim`.
pub(crate) fn concat(xs: &[Tensor], dim: usize) -> Result<Tensor> {
    let Some(first) = xs.first() else {
        bail!("concat: no tensors given");
    };
    let dtype = first.dtype();
    if let Some(x) = xs.iter().find(|x| x.dtype() != dtype) {
        bail!(
            "concat: tensors have different dtypes ({} and {})",
            dtype,
            x.dtype()
        );
    }
    let mut shape = first.shape().to_vec();
    shape[dim] = xs.iter().map(|x| x.shape()[dim]).sum();
    let outer: usize = shape[..dim].iter().product();
    fn go<T: CpuElem>(xs: &[Tensor], dim: usize, outer: usize, numel: usize) -> CpuStorage {
        let parts: Vec<_> = xs.iter().map(row_major::<T>).collect();
        let chunks: Vec<usize> = xs
            .iter()
            .map(|x| x.shape()[dim..].iter().product())
            .collect();
        let mut out = Vec::with_capacity(numel);
        for o in 0..outer {
            for (p, &c) in parts.iter().zip(&chunks) {
                out.extend_from_slice(&p[o * c..(o + 1) * c]);
            }
        }
        T::wrap(out)
    }
    let numel = shape.iter().product();
    let out = with_elem!("concat", storage(first), T => go::<T>(xs, dim, outer, numel));
    Tensor::from_cpu_storage(out, &shape)
}

fn index_error(op: &str, i: i64, dim: usize, size: usize) -> crate::TensorError {
    crate::TensorError(format!(
        "{op}: index {i} is out of bounds for dimension {dim} of size {size}"
    ))
}

/// torch.gather: `out[i..] = x[i.. with i[dim] = index[i..]]`; `index` is I64 with x's rank
/// and every extent (but along `dim`) at most x's.
pub(crate) fn gather(x: &Tensor, dim: usize, index: &Tensor) -> Result<Tensor> {
    let CpuStorage::I64(idx) = storage(index) else {
        bail!(
            "gather: the index must be an int64 tensor, got {}",
            index.dtype()
        );
    };
    let xl = x.layout();
    let size = xl.shape[dim];
    let stride = xl.strides[dim];
    // x addressed with the index's shape and the gathered dimension pinned to 0.
    let mut base_strides = xl.strides.clone();
    base_strides[dim] = 0;
    let base = Layout {
        shape: index.shape().to_vec(),
        strides: base_strides,
        offset: xl.offset,
    };
    fn go<T: CpuElem>(
        v: &[T],
        base: &Layout,
        idx: &[i64],
        il: &Layout,
        stride: usize,
        size: usize,
    ) -> std::result::Result<Vec<T>, i64> {
        let mut out = Vec::with_capacity(il.numel());
        let plan = Plan::new([base, il]);
        let [sb, si] = plan.inner_strides();
        let mut bad = None;
        plan.for_each_run(|[ob, oi], len| {
            for i in 0..len {
                let j = idx[oi + i * si];
                if j < 0 || j as usize >= size {
                    bad.get_or_insert(j);
                    return;
                }
                out.push(v[ob + i * sb + j as usize * stride]);
            }
        });
        match bad {
            Some(j) => Err(j),
            None => Ok(out),
        }
    }
    let out = with_elem!("gather", storage(x), T => go::<T>(typed::<T>(x), &base, idx, index.layout(), stride, size)
        .map(T::wrap)
        .map_err(|j| index_error("gather", j, dim, size))?);
    Tensor::from_cpu_storage(out, index.shape())
}

/// The positions an int64 `index` names along a dimension of `size`, in index order; `op`
/// names the caller in the errors (not int64, or a position out of range).
fn index_rows(op: &str, index: &Tensor, dim: usize, size: usize) -> Result<Vec<usize>> {
    let CpuStorage::I64(idx) = storage(index) else {
        bail!(
            "{op}: the index must be an int64 tensor, got {}",
            index.dtype()
        );
    };
    let mut rows = Vec::with_capacity(index.numel());
    let mut bad = None;
    super::strided::for_each_offset(index.layout(), |o| {
        let j = idx[o];
        if j < 0 || j as usize >= size {
            bad.get_or_insert(j);
        } else {
            rows.push(j as usize);
        }
    });
    match bad {
        Some(j) => Err(index_error(op, j, dim, size)),
        None => Ok(rows),
    }
}

/// Slices `index[k]` of `x` along `dim`, for a 1-D I64 `index`.
pub(crate) fn index_select(x: &Tensor, dim: usize, index: &Tensor) -> Result<Tensor> {
    let size = x.shape()[dim];
    let rows = index_rows("index_select", index, dim, size)?;
    let mut shape = x.shape().to_vec();
    shape[dim] = rows.len();
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    fn go<T: CpuElem>(
        x: &Tensor,
        rows: &[usize],
        outer: usize,
        inner: usize,
        size: usize,
    ) -> CpuStorage {
        let data = row_major::<T>(x);
        let mut out = Vec::with_capacity(outer * rows.len() * inner);
        for o in 0..outer {
            let block = &data[o * size * inner..(o + 1) * size * inner];
            for &r in rows {
                out.extend_from_slice(&block[r * inner..(r + 1) * inner]);
            }
        }
        T::wrap(out)
    }
    let out = with_elem!("index_select", storage(x), T => go::<T>(x, &rows, outer, inner, size));
    Tensor::from_cpu_storage(out, &shape)
}

/// The row-major strides of `shape` with the dims in `zeroed` set to 0 (a broadcast target).
pub(crate) fn strides_without(shape: &[usize], zeroed: &[usize]) -> Vec<usize> {
    let mut s = contiguous_strides(shape);
    for &d in zeroed {
        s[d] = 0;
    }
    s
}

/// `Backend::index_add` on the host: accumulates in f32, then converts to `src`'s dtype.
pub(crate) fn index_add(src: &Tensor, dim: usize, index: &Tensor, size: usize) -> Result<Tensor> {
    let rows = index_rows("index_add", index, dim, size)?;
    let shape = src.shape();
    if rows.len() != shape[dim] {
        bail!(
            "index_add: {} indices for {} slices along dimension {dim}",
            rows.len(),
            shape[dim]
        );
    }
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let src32 = src.cast(crate::DType::F32)?;
    let data = row_major::<f32>(&src32);
    let mut out = vec![0f32; outer * size * inner];
    let k = rows.len();
    for o in 0..outer {
        for (r, &to) in rows.iter().enumerate() {
            let from = &data[(o * k + r) * inner..(o * k + r + 1) * inner];
            let dst = &mut out[(o * size + to) * inner..(o * size + to + 1) * inner];
            for (d, s) in dst.iter_mut().zip(from) {
                *d += s;
            }
        }
    }
    let mut out_shape = shape.to_vec();
    out_shape[dim] = size;
    Tensor::from_f32(out, &out_shape)?.cast(src.dtype())
}
