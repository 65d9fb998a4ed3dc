//! Matrix products on the CPU through the `gemm` crate. Strided operands (transposed views,
//! broadcast batch dims) are handed to `gemm` with their row/column strides, so no copy is
//! made for f32 and f16; bf16, which `gemm` lacks, is widened to f32 and rounded back.

use crate::bail;
use crate::error::Result;
use crate::layout::Layout;
use crate::storage::CpuStorage;
use crate::tensor::Tensor;
use gemm::Parallelism;
use half::{bf16, f16};
use std::sync::OnceLock;

use super::nn::{host_storage, strided_f32};

/// Products with fewer multiply-adds than this run on one thread: waking the pool costs
/// more than it saves.
const PARALLEL_MIN_FLOPS: usize = 96 * 96 * 96;

/// Worker threads available to one product.
pub(crate) fn num_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

pub(crate) fn parallelism_for(work: usize) -> Parallelism {
    let threads = num_threads();
    if work >= PARALLEL_MIN_FLOPS && threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    }
}

/// Sizes and element strides of one product `dst[m, n] = lhs[m, k] @ rhs[k, n]`; `dst` is
/// row-major contiguous.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lhs_rs: isize,
    pub lhs_cs: isize,
    pub rhs_rs: isize,
    pub rhs_cs: isize,
}

/// Largest element offset a `rows x cols` view with these strides addresses.
fn max_offset(rows: usize, cols: usize, rs: isize, cs: isize) -> usize {
    (rows.saturating_sub(1)) * rs as usize + (cols.saturating_sub(1)) * cs as usize
}

/// `dst = lhs @ rhs` for one product; `lhs` and `rhs` start at their first element.
/// Runs on several threads when the product is large enough.
pub(crate) fn gemm_strided<T: 'static + Copy + Default>(
    g: Gemm,
    lhs: &[T],
    rhs: &[T],
    dst: &mut [T],
    one: T,
) {
    gemm_with(g, lhs, rhs, dst, one, parallelism_for(g.m * g.n * g.k));
}

pub(crate) fn gemm_with<T: 'static + Copy + Default>(
    g: Gemm,
    lhs: &[T],
    rhs: &[T],
    dst: &mut [T],
    one: T,
    parallelism: Parallelism,
) {
    let Gemm { m, n, k, .. } = g;
    assert!(dst.len() >= m * n, "gemm: destination too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        dst[..m * n].iter_mut().for_each(|x| *x = T::default());
        return;
    }
    // The layouts of tensors guarantee these; checking keeps the unsafe call below sound.
    assert!(
        max_offset(m, k, g.lhs_rs, g.lhs_cs) < lhs.len(),
        "gemm: lhs out of bounds"
    );
    assert!(
        max_offset(k, n, g.rhs_rs, g.rhs_cs) < rhs.len(),
        "gemm: rhs out of bounds"
    );
    // SAFETY: every element addressed through the strides lies inside the slices (checked
    // above), `dst` holds m*n elements written row-major, and `T` is f32 or f16, which gemm
    // supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            g.lhs_cs,
            g.lhs_rs,
            rhs.as_ptr(),
            g.rhs_cs,
            g.rhs_rs,
            T::default(),
            one,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Merges a run of dims into one (size, stride) if they are evenly strided (size-1 dims are
/// ignored); `None` if they are not.
pub(crate) fn merge_dims(shape: &[usize], strides: &[usize]) -> Option<(usize, usize)> {
    let size: usize = shape.iter().product();
    let dims: Vec<(usize, usize)> = shape
        .iter()
        .zip(strides)
        .filter(|&(&d, _)| d != 1)
        .map(|(&d, &s)| (d, s))
        .collect();
    for w in dims.windows(2) {
        if w[0].1 != w[1].0 * w[1].1 {
            return None;
        }
    }
    Some((size, dims.last().map_or(1, |&(_, s)| s)))
}

/// Storage offset of batch element `bi` (row-major over `batch_shape`).
fn batch_offset(mut bi: usize, batch_shape: &[usize], strides: &[usize], base: usize) -> usize {
    let mut off = base;
    for d in (0..batch_shape.len()).rev() {
        let size = batch_shape[d];
        off += (bi % size) * strides[d];
        bi /= size;
    }
    off
}

/// The batched product of two views `a` [B.., m, k] and `b` [B.., k, n] with equal batch
/// shapes (broadcast dims have stride 0) and the same float dtype. Returns a contiguous
/// [B.., m, n] tensor.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let r = a.rank();
    let mut out_shape = a.shape()[..r - 1].to_vec();
    out_shape.push(b.shape()[r - 1]);
    let storage = match (host_storage("matmul", a)?, host_storage("matmul", b)?) {
        (CpuStorage::F32(ad), CpuStorage::F32(bd)) => {
            CpuStorage::F32(batched(ad, a.layout(), bd, b.layout(), 1.0f32).into())
        }
        (CpuStorage::F16(ad), CpuStorage::F16(bd)) => {
            CpuStorage::F16(batched(ad, a.layout(), bd, b.layout(), f16::ONE).into())
        }
        (CpuStorage::BF16(_), CpuStorage::BF16(_)) => {
            let (ad, al) = strided_f32("matmul", a)?;
            let (bd, bl) = strided_f32("matmul", b)?;
            let out = batched(&ad, &al, &bd, &bl, 1.0f32);
            CpuStorage::BF16(out.into_iter().map(bf16::from_f32).collect())
        }
        (x, y) if x.dtype() != y.dtype() => {
            bail!("matmul: dtypes {} and {} differ", x.dtype(), y.dtype())
        }
        (x, _) => bail!("matmul: dtype {} is not supported", x.dtype()),
    };
    Tensor::from_cpu_storage(storage, &out_shape)
}

fn batched<T: 'static + Copy + Default + Send + Sync>(
    ad: &[T],
    al: &Layout,
    bd: &[T],
    bl: &Layout,
    one: T,
) -> Vec<T> {
    let r = al.rank();
    let (m, k, n) = (al.shape[r - 2], al.shape[r - 1], bl.shape[r - 1]);
    let batch_shape = &al.shape[..r - 2];
    let batch: usize = batch_shape.iter().product();
    let mut out = vec![T::default(); batch * m * n];
    if out.is_empty() {
        return out;
    }
    let per = Gemm {
        m,
        n,
        k,
        lhs_rs: al.strides[r - 2] as isize,
        lhs_cs: al.strides[r - 1] as isize,
        rhs_rs: bl.strides[r - 2] as isize,
        rhs_cs: bl.strides[r - 1] as isize,
    };

    // One shared right operand and evenly strided left rows: a single [B*m, k] @ [k, n] product.
    let rhs_shared = batch_shape
        .iter()
        .zip(&bl.strides)
        .all(|(&d, &s)| d == 1 || s == 0);
    if batch > 1
        && rhs_shared
        && let Some((rows, rs)) = merge_dims(&al.shape[..r - 1], &al.strides[..r - 1])
    {
        let g = Gemm {
            m: rows,
            lhs_rs: rs as isize,
            ..per
        };
        gemm_strided(g, &ad[al.offset..], &bd[bl.offset..], &mut out, one);
        return out;
    }

    let threads = num_threads();
    let per_work = m * n * k;
    let split = threads > 1
        && batch > 1
        && per_work < PARALLEL_MIN_FLOPS
        && per_work * batch >= PARALLEL_MIN_FLOPS;
    let run_range = |first: usize, dst: &mut [T], parallelism: Parallelism| {
        for (i, chunk) in dst.chunks_exact_mut(m * n).enumerate() {
            let bi = first + i;
            let ao = batch_offset(bi, batch_shape, &al.strides, al.offset);
            let bo = batch_offset(bi, batch_shape, &bl.strides, bl.offset);
            gemm_with(per, &ad[ao..], &bd[bo..], chunk, one, parallelism);
        }
    };
    if split {
        // Many small products: give each thread a contiguous run of batch elements.
        let per_thread = batch.div_ceil(threads);
        std::thread::scope(|scope| {
            for (t, dst) in out.chunks_mut(per_thread * m * n).enumerate() {
                let run_range = &run_range;
                scope.spawn(move || run_range(t * per_thread, dst, Parallelism::None));
            }
        });
    } else {
        run_range(0, &mut out, parallelism_for(per_work));
    }
    out
}
