//! Joining, splitting and indexing: concat, stack, split, repeat, gather, index_select.

use crate::bail;
use crate::dtype::DType;
use crate::error::{Result, shape_str};
use crate::layout::{Layout, normalize_dim};
use crate::tensor::Tensor;

impl Tensor {
    /// `tensors` joined along `dim`; all shapes must agree except along `dim`. Mixed dtypes
    /// are promoted.
    pub fn concat(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        crate::ops::refuse_quantized("concat", &tensors.iter().collect::<Vec<_>>())?;
        let Some(first) = tensors.first() else {
            bail!("concat: no tensors given");
        };
        let rank = first.rank();
        if rank == 0 {
            bail!("concat: rank-0 tensors cannot be concatenated (use stack)");
        }
        let d = normalize_dim("concat", dim, rank)?;
        let mut dtype = first.dtype();
        for t in &tensors[1..] {
            let same = t.rank() == rank
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(i, (a, b))| i == d || a == b);
            if !same {
                bail!(
                    "concat: shapes {} and {} differ outside dimension {d}",
                    shape_str(first.shape()),
                    shape_str(t.shape())
                );
            }
            dtype = DType::promote(dtype, t.dtype());
        }
        if tensors.len() == 1 {
            return Ok(first.clone());
        }
        let refs: Vec<&Tensor> = tensors.iter().collect();
        let out = {
            let _off = crate::autograd::no_grad();
            let cast: Vec<Tensor> = crate::device::co_locate("concat", &refs, usize::MAX)?
                .iter()
                .map(|t| t.cast(dtype))
                .collect::<Result<_>>()?;
            cast[0].backend().concat(&cast, d)
        };
        crate::autograd::record_ok(out, &refs, || crate::autograd::Op::Concat(d))
    }

    /// `tensors` (all of one shape) joined along a new dimension `dim`.
    pub fn stack(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        crate::ops::refuse_quantized("stack", &tensors.iter().collect::<Vec<_>>())?;
        let Some(first) = tensors.first() else {
            bail!("stack: no tensors given");
        };
        if let Some(t) = tensors.iter().find(|t| t.shape() != first.shape()) {
            bail!(
                "stack: all tensors must have one shape, got {} and {}",
                shape_str(first.shape()),
                shape_str(t.shape())
            );
        }
        let d = normalize_dim("stack", dim, first.rank() + 1)? as isize;
        let parts: Vec<Tensor> = tensors
            .iter()
            .map(|t| t.unsqueeze(d))
            .collect::<Result<_>>()?;
        if parts.len() == 1 {
            return Ok(parts.into_iter().next().expect("one part"));
        }
        Tensor::concat(&parts, d)
    }

    /// Views of consecutive pieces of `size` along `dim` (the last may be shorter).
    pub fn split(&self, size: usize, dim: isize) -> Result<Vec<Tensor>> {
        let d = normalize_dim("split", dim, self.rank())?;
        if size == 0 {
            bail!("split: the piece size must be at least 1");
        }
        let total = self.shape()[d];
        let mut out = Vec::with_capacity(total.div_ceil(size));
        let mut start = 0;
        while start < total {
            let len = size.min(total - start);
            out.push(self.narrow(d as isize, start, len)?);
            start += len;
        }
        Ok(out)
    }

    /// The tensor tiled `repeats[i]` times along each dimension (torch.repeat: `repeats` may be
    /// longer than the rank, adding leading dimensions).
    pub fn repeat(&self, repeats: &[usize]) -> Result<Tensor> {
        crate::ops::refuse_quantized("repeat", &[self])?;
        if repeats.len() < self.rank() {
            bail!(
                "repeat: {} repeat counts given for a tensor of shape {} (at least {} needed)",
                repeats.len(),
                shape_str(self.shape()),
                self.rank()
            );
        }
        let lead = repeats.len() - self.rank();
        let l = self.layout();
        // View as [r0, s0, r1, s1, ...] with stride 0 on the repeat dims, then copy once.
        let mut view = Layout {
            shape: Vec::with_capacity(2 * repeats.len()),
            strides: Vec::with_capacity(2 * repeats.len()),
            offset: l.offset,
        };
        let mut out_shape = Vec::with_capacity(repeats.len());
        for (i, &r) in repeats.iter().enumerate() {
            let (s, st) = if i < lead {
                (1, 0)
            } else {
                (l.shape[i - lead], l.strides[i - lead])
            };
            view.shape.extend([r, s]);
            view.strides.extend([0, st]);
            out_shape.push(r as isize * s as isize);
        }
        let tiled = self.with_layout(view);
        let out = tiled.backend().contiguous(&tiled)?.reshape(&out_shape);
        crate::autograd::record_ok(out, &[self], || {
            crate::autograd::Op::Repeat(repeats.to_vec())
        })
    }

    /// torch.gather: `out[i][j] = self[index[i][j]][j]` for `dim` 0, and so on. `index` is I64
    /// with `self`'s rank, each extent (but along `dim`) at most `self`'s; the output has
    /// `index`'s shape.
    pub fn gather(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        crate::ops::refuse_quantized("gather", &[self])?;
        let d = normalize_dim("gather", dim, self.rank())?;
        if index.dtype() != DType::I64 {
            bail!(
                "gather: the index must be an int64 tensor, got {}",
                index.dtype()
            );
        }
        let fits = index.rank() == self.rank()
            && index
                .shape()
                .iter()
                .zip(self.shape())
                .enumerate()
                .all(|(i, (a, b))| i == d || a <= b);
        if !fits {
            bail!(
                "gather: index of shape {} does not fit tensor of shape {} (same rank, and no larger outside dimension {d})",
                shape_str(index.shape()),
                shape_str(self.shape())
            );
        }
        let both = crate::device::co_locate("gather", &[self, index], 1)?;
        let out = both[0].backend().gather(&both[0], d, &both[1]);
        crate::autograd::record_ok(out, &[self, index], || crate::autograd::Op::Gather(d))
    }

    /// The slices `index[k]` of `self` along `dim`, for a 1-D (or rank-0) I64 `index`.
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        crate::ops::refuse_quantized("index_select", &[self])?;
        let d = normalize_dim("index_select", dim, self.rank())?;
        if index.dtype() != DType::I64 {
            bail!(
                "index_select: the index must be an int64 tensor, got {}",
                index.dtype()
            );
        }
        if index.rank() > 1 {
            bail!(
                "index_select: the index must be 1-D, got shape {}",
                shape_str(index.shape())
            );
        }
        let both = crate::device::co_locate("index_select", &[self, index], 1)?;
        let out = both[0].backend().index_select(&both[0], d, &both[1]);
        crate::autograd::record_ok(out, &[self, index], || crate::autograd::Op::IndexSelect(d))
    }
}
