//! The CPU backend: the reference implementation every other backend is checked against.

pub(crate) mod attention_rows;
pub(crate) mod copy;
pub(crate) mod elementwise;
pub(crate) mod linear;
pub(crate) mod matmul;
pub(crate) mod nn;
pub(crate) mod quantized;
pub(crate) mod reduce;
pub(crate) mod strided;
pub(crate) mod team;
pub(crate) mod write;

use crate::backend::Backend;
use crate::dtype::DType;
use crate::error::Result;
use crate::ops::{BinaryOp, ReduceOp, UnaryOp};
use crate::tensor::Tensor;

/// Makes the calling thread one of the CPU worker pool's threads (the pool then starts one
/// thread fewer). Call it once, early, from the thread that will run the program.
///
/// Why: a parallel kernel started from a thread outside the pool hands its work to the pool
/// and sleeps until the pool is done; on 2 cores that is a sleep and a wake-up of the caller
/// per mat-vec (about 150 per generated token) while it could have done half of the work.
/// Inside the pool the caller works on its own chunks and only the other worker is woken.
/// Returns false (and changes nothing) when the pool was already started.
pub fn join_worker_pool() -> bool {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .is_ok()
}

/// The CPU backend (stateless).
pub struct CpuBackend;

/// The one CPU backend instance.
pub static CPU: CpuBackend = CpuBackend;

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn contiguous(&self, x: &Tensor) -> Result<Tensor> {
        copy::contiguous(x)
    }

    fn full(&self, shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        elementwise::full(shape, value, dtype)
    }

    fn unary(&self, op: UnaryOp, x: &Tensor) -> Result<Tensor> {
        elementwise::unary(op, x)
    }

    fn binary(&self, op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        elementwise::binary(op, a, b)
    }

    fn cast(&self, x: &Tensor, dtype: DType) -> Result<Tensor> {
        elementwise::cast(x, dtype)
    }

    fn clamp(&self, x: &Tensor, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
        elementwise::clamp(x, min, max)
    }

    fn where_cond(&self, cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        elementwise::where_cond(cond, a, b)
    }

    fn reduce(&self, op: ReduceOp, x: &Tensor, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        reduce::reduce(op, x, dims, keepdim)
    }

    fn arg_reduce(&self, x: &Tensor, dim: usize, keepdim: bool, largest: bool) -> Result<Tensor> {
        reduce::arg_reduce(x, dim, keepdim, largest)
    }

    fn concat(&self, xs: &[Tensor], dim: usize) -> Result<Tensor> {
        copy::concat(xs, dim)
    }

    fn gather(&self, x: &Tensor, dim: usize, index: &Tensor) -> Result<Tensor> {
        copy::gather(x, dim, index)
    }

    fn index_select(&self, x: &Tensor, dim: usize, index: &Tensor) -> Result<Tensor> {
        copy::index_select(x, dim, index)
    }

    fn write_slice(&self, dst: &mut Tensor, dim: usize, start: usize, src: &Tensor) -> Result<()> {
        write::write_slice(dst, dim, start, src)
    }

    fn index_add(&self, src: &Tensor, dim: usize, index: &Tensor, size: usize) -> Result<Tensor> {
        copy::index_add(src, dim, index, size)
    }

    // --- core ops (elementwise, reductions, copies) go above this line ---

    fn matmul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        matmul::matmul(a, b)
    }

    fn softmax(&self, x: &Tensor, dim: usize, log: bool) -> Result<Tensor> {
        nn::softmax(x, dim, log)
    }

    fn rms_norm(&self, x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
        nn::rms_norm(x, w, eps)
    }

    fn layer_norm(
        &self,
        x: &Tensor,
        w: Option<&Tensor>,
        b: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        nn::layer_norm(x, w, b, eps)
    }

    fn rope(
        &self,
        x: &Tensor,
        seq_dim: Option<usize>,
        pos: usize,
        theta: f64,
        neox: bool,
    ) -> Result<Tensor> {
        nn::rope(x, seq_dim, pos, theta, neox)
    }

    fn embedding(&self, table: &Tensor, ids: &Tensor) -> Result<Tensor> {
        nn::embedding(table, ids)
    }

    fn silu_mul(&self, a: &Tensor, b: &Tensor, dtype: crate::DType) -> Result<Tensor> {
        nn::silu_mul(a, b, dtype)
    }

    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        scale: f64,
    ) -> Result<Tensor> {
        nn::attention(q, k, v, mask, scale)
    }

    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        linear::linear(x, w, b)
    }

    // --- linear algebra and neural ops go above this line ---
}
