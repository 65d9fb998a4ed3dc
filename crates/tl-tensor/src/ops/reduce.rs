//! Reductions over dimensions.

/// Reductions over one or more dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
}

use crate::bail;
use crate::dtype::DType;
use crate::error::{Result, shape_str};
use crate::layout::normalize_dim;
use crate::ops::{BinaryOp, UnaryOp};
use crate::tensor::Tensor;

impl ReduceOp {
    /// The op's lower-case name (`sum`, `mean`, ...), as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::Prod => "prod",
        }
    }

    /// The dtype the reduction of a `dtype` tensor returns: floats keep theirs; the mean of
    /// ints and bools is f32; max/min of bools (any/all) are bool; other int and bool
    /// reductions are i64.
    pub fn output_dtype(self, dtype: DType) -> DType {
        match (self, dtype) {
            (_, DType::F32 | DType::F16 | DType::BF16) => dtype,
            (ReduceOp::Mean, _) => DType::F32,
            (ReduceOp::Max | ReduceOp::Min, DType::Bool) => DType::Bool,
            _ => DType::I64,
        }
    }
}

/// Normalised, sorted, distinct dims (`None` = all).
fn reduce_dims(op: &str, dims: Option<&[isize]>, rank: usize) -> Result<Vec<usize>> {
    let Some(dims) = dims else {
        return Ok((0..rank).collect());
    };
    let mut out = Vec::with_capacity(dims.len());
    for &d in dims {
        let n = normalize_dim(op, d, rank)?;
        if out.contains(&n) {
            bail!("{op}: dimension {d} appears more than once in {dims:?}");
        }
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

impl Tensor {
    /// `op` over `dims` (`None` = all dims); `keepdim` keeps them with size 1.
    pub fn reduce(&self, op: ReduceOp, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        crate::ops::refuse_quantized(op.name(), &[self])?;
        let name = op.name();
        let dims = reduce_dims(name, dims, self.rank())?;
        let empty = dims.iter().find(|&&d| self.shape()[d] == 0);
        if let (ReduceOp::Max | ReduceOp::Min, Some(&d)) = (op, empty) {
            bail!(
                "{name}: cannot reduce over dimension {d} of size 0 (shape {})",
                shape_str(self.shape())
            );
        }
        let out = self.backend().reduce(op, self, &dims, keepdim);
        crate::autograd::record_ok(out, &[self], || crate::autograd::Op::Reduce(op, dims))
    }

    fn arg_extreme(
        &self,
        name: &str,
        dim: Option<isize>,
        keepdim: bool,
        largest: bool,
    ) -> Result<Tensor> {
        match dim {
            Some(d) => {
                let d = normalize_dim(name, d, self.rank())?;
                if self.shape()[d] == 0 {
                    bail!(
                        "{name}: cannot reduce over dimension {d} of size 0 (shape {})",
                        shape_str(self.shape())
                    );
                }
                self.backend().arg_reduce(self, d, keepdim, largest)
            }
            None => {
                if self.numel() == 0 {
                    bail!(
                        "{name}: the tensor is empty (shape {})",
                        shape_str(self.shape())
                    );
                }
                let flat = self.reshape(&[-1])?;
                let r = flat.backend().arg_reduce(&flat, 0, false, largest)?;
                if keepdim {
                    r.reshape(&vec![1; self.rank()])
                } else {
                    Ok(r)
                }
            }
        }
    }

    /// I64 index of the largest element along `dim` (`None` = of the flattened tensor);
    /// the first one on ties, NaN counting as largest.
    pub fn argmax(&self, dim: Option<isize>, keepdim: bool) -> Result<Tensor> {
        crate::ops::refuse_quantized("argmax", &[self])?;
        self.arg_extreme("argmax", dim, keepdim, true)
    }

    /// I64 index of the smallest element along `dim` (`None` = of the flattened tensor);
    /// the first one on ties, NaN counting as smallest.
    pub fn argmin(&self, dim: Option<isize>, keepdim: bool) -> Result<Tensor> {
        crate::ops::refuse_quantized("argmin", &[self])?;
        self.arg_extreme("argmin", dim, keepdim, false)
    }

    /// The L2 norm over `dims` (`None` = all): `sqrt(sum(x^2))`; ints and bools give f32.
    pub fn norm(&self, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        crate::ops::refuse_quantized("norm", &[self])?;
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.cast(DType::F32)?
        };
        let dims = reduce_dims("norm", dims, self.rank())?;
        let squares = x.binary(BinaryOp::Mul, &x)?;
        let dims: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
        squares
            .reduce(ReduceOp::Sum, Some(&dims), keepdim)?
            .unary(UnaryOp::Sqrt)
    }
}
