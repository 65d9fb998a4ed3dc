//! Batched matrix products through cuBLAS (`cublasGemmStridedBatchedEx`), f32 accumulation
//! for every dtype. Operands are used in place when each matrix has a unit stride in one dim
//! and the batch dims collapse to one stride (broadcast batches have stride 0); otherwise they
//! are copied to contiguous memory first.

use cudarc::cublas::sys::{
    cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType_t,
};
use std::ffi::c_void;
use std::sync::Arc;
use tl_tensor::{Backend, DType, Result, Tensor, TensorError, stats};

use crate::CudaBackend;
use crate::runtime::{BlasHandle, ThreadStream};

/// How cuBLAS reads one operand: its (column-major) leading dimension, whether the
/// row-major matrix is stored transposed, and the element stride between batch entries.
struct Operand {
    tensor: Tensor,
    ld: i32,
    transposed: bool,
    batch_stride: i64,
}

/// The single stride of the batch dims, if they collapse to one (size-1 dims are free).
fn batch_stride(shape: &[usize], strides: &[usize]) -> Option<i64> {
    let dims: Vec<(usize, usize)> = shape
        .iter()
        .zip(strides)
        .filter(|(d, _)| **d != 1)
        .map(|(&d, &s)| (d, s))
        .collect();
    let Some(&(_, last)) = dims.last() else {
        return Some(0);
    };
    for w in dims.windows(2) {
        let ((_, s0), (d1, s1)) = (w[0], w[1]);
        if s0 != s1 * d1 {
            return None;
        }
    }
    Some(last as i64)
}

/// The operand as cuBLAS can read it, copying it to contiguous memory when its layout has no
/// unit-stride dim or its batch dims do not collapse.
fn operand(backend: &CudaBackend, x: &Tensor) -> Result<Operand> {
    let l = x.layout();
    let r = l.rank();
    let (rows, cols) = (l.shape[r - 2], l.shape[r - 1]);
    let (sr, sc) = (l.strides[r - 2], l.strides[r - 1]);
    let batch = batch_stride(&l.shape[..r - 2], &l.strides[..r - 2]);
    let row_major = (sc == 1 || cols <= 1) && (sr >= cols || rows <= 1);
    let col_major = (sr == 1 || rows <= 1) && (sc >= rows || cols <= 1);
    match batch {
        Some(bs) if row_major => Ok(Operand {
            tensor: x.clone(),
            ld: sr.max(cols).max(1) as i32,
            transposed: false,
            batch_stride: bs,
        }),
        Some(bs) if col_major => Ok(Operand {
            tensor: x.clone(),
            ld: sc.max(rows).max(1) as i32,
            transposed: true,
            batch_stride: bs,
        }),
        _ => {
            let c = backend.contiguous(x)?;
            let bs = (rows * cols) as i64;
            Ok(Operand {
                tensor: c,
                ld: cols.max(1) as i32,
                transposed: false,
                batch_stride: bs,
            })
        }
    }
}

fn cuda_type(d: DType) -> Result<cudaDataType_t> {
    Ok(match d {
        DType::F32 => cudaDataType_t::CUDA_R_32F,
        DType::F16 => cudaDataType_t::CUDA_R_16F,
        DType::BF16 => cudaDataType_t::CUDA_R_16BF,
        other => {
            return Err(TensorError(format!(
                "matmul: the cuda backend multiplies float tensors, got {other}"
            )));
        }
    })
}

fn blas_err(what: &str) -> impl Fn(cudarc::cublas::result::CublasError) -> TensorError + '_ {
    move |e| TensorError(format!("cuda: {what}: {e:?}"))
}

/// The calling thread's cuBLAS handle, bound to its stream.
fn handle(s: &ThreadStream) -> Result<cudarc::cublas::sys::cublasHandle_t> {
    let mut h = s.blas.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = h.as_ref() {
        return Ok(h.0);
    }
    let created =
        cudarc::cublas::result::create_handle().map_err(blas_err("creating a cuBLAS handle"))?;
    // SAFETY: a fresh handle and this thread's live stream.
    unsafe {
        cudarc::cublas::result::set_stream(created, s.flushed()? as _)
            .map_err(blas_err("binding cuBLAS to the stream"))?;
    }
    *h = Some(BlasHandle(created));
    Ok(created)
}

pub(crate) fn matmul(
    backend: &'static CudaBackend,
    s: &Arc<ThreadStream>,
    a: &Tensor,
    b: &Tensor,
) -> Result<Tensor> {
    let dt = a.dtype();
    if b.dtype() != dt {
        return Err(TensorError(format!(
            "matmul: operands have different dtypes ({} and {})",
            dt,
            b.dtype()
        )));
    }
    let ty = cuda_type(dt)?;
    let r = a.rank();
    let (m, k) = (a.shape()[r - 2], a.shape()[r - 1]);
    let n = b.shape()[r - 1];
    let batch_shape = &a.shape()[..r - 2];
    let batch: usize = batch_shape.iter().product();
    let mut shape = batch_shape.to_vec();
    shape.extend_from_slice(&[m, n]);
    if batch == 0 || m == 0 || n == 0 {
        return backend.alloc_tensor(s, &shape, dt);
    }
    if k == 0 {
        return backend.full(&shape, 0.0, dt);
    }
    for (what, v) in [("m", m), ("n", n), ("k", k), ("batch", batch)] {
        if v > i32::MAX as usize {
            return Err(TensorError(format!(
                "matmul: {what} = {v} is too large for cuBLAS"
            )));
        }
    }
    let oa = operand(backend, a)?;
    let ob = operand(backend, b)?;
    let out = backend.alloc_tensor(s, &shape, dt)?;
    let esize = dt.size_in_bytes() as u64;
    let pa = backend.input("matmul", s, &oa.tensor)? + oa.tensor.layout().offset as u64 * esize;
    let pb = backend.input("matmul", s, &ob.tensor)? + ob.tensor.layout().offset as u64 * esize;
    let pc = backend.input("matmul", s, &out)?;
    let h = handle(s)?;
    // cuBLAS queues its kernels on the stream directly: the grouped launches go first.
    s.flushed()?;
    // Row-major C = A B is column-major C^T = B^T A^T: cuBLAS's first operand is B.
    let op = |t: bool| {
        if t {
            cublasOperation_t::CUBLAS_OP_T
        } else {
            cublasOperation_t::CUBLAS_OP_N
        }
    };
    let (alpha, beta) = (1.0f32, 0.0f32);
    // SAFETY: the pointers address live device storages of the sizes the dims and strides
    // describe (checked by the layouts), and the handle is bound to this thread's stream.
    s.profiled("cublas_gemm", || unsafe {
        cudarc::cublas::result::gemm_strided_batched_ex(
            h,
            op(ob.transposed),
            op(oa.transposed),
            n as i32,
            m as i32,
            k as i32,
            &alpha as *const f32 as *const c_void,
            pb as *const c_void,
            ty,
            ob.ld,
            ob.batch_stride,
            pa as *const c_void,
            ty,
            oa.ld,
            oa.batch_stride,
            &beta as *const f32 as *const c_void,
            pc as *mut c_void,
            ty,
            n as i32,
            (m * n) as i64,
            batch as i32,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
            cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
        .map_err(blas_err("matrix product"))
    })?;
    stats::count_launches(1);
    Ok(out)
}
