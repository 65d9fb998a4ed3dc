//! Shape ops: reshape, transpose, permute, slice, broadcast and friends. They build views
//! (new layouts over the same storage) wherever the layout allows and copy only otherwise.

use crate::autograd::Op;
use crate::bail;
use crate::error::{Result, shape_str};
use crate::layout::{Layout, contiguous_strides, normalize_dim};
use crate::tensor::Tensor;

/// Resolves a shape with at most one `-1` for `numel` elements.
fn resolve_shape(op: &str, from: &[usize], numel: usize, shape: &[isize]) -> Result<Vec<usize>> {
    let mut infer = None;
    let mut known: usize = 1;
    for (i, &d) in shape.iter().enumerate() {
        if d == -1 {
            if infer.is_some() {
                bail!("{op}: only one dimension can be -1, got {shape:?}");
            }
            infer = Some(i);
        } else if d < 0 {
            bail!("{op}: invalid dimension {d} in shape {shape:?}");
        } else {
            known = known.saturating_mul(d as usize);
        }
    }
    let mut out: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    match infer {
        Some(i) => {
            if known == 0 || !numel.is_multiple_of(known) {
                bail!(
                    "{op}: cannot reshape tensor of shape {} ({numel} elements) into {shape:?}",
                    shape_str(from)
                );
            }
            out[i] = numel / known;
        }
        None => {
            if known != numel {
                bail!(
                    "{op}: cannot reshape tensor of shape {} ({numel} elements) into {} ({known} elements)",
                    shape_str(from),
                    shape_str(&out)
                );
            }
        }
    }
    Ok(out)
}

/// Strides that view `layout`'s elements (in row-major order) as `shape` without copying, if
/// they exist: every group of new dimensions must fall inside a run of old dimensions that are
/// contiguous with each other (the rule PyTorch's `view` follows).
fn view_strides(layout: &Layout, shape: &[usize]) -> Option<Vec<usize>> {
    if layout.numel() == 0 || layout.is_contiguous() {
        return Some(contiguous_strides(shape));
    }
    let (old_shape, old_strides) = (&layout.shape, &layout.strides);
    let mut strides = vec![0; shape.len()];
    let mut view_d = shape.len() as isize - 1;
    let mut chunk_base_stride = *old_strides.last()?;
    let mut tensor_numel = 1;
    let mut view_numel = 1;
    for tensor_d in (0..old_shape.len()).rev() {
        tensor_numel *= old_shape[tensor_d];
        // A chunk ends where the next outer dim does not continue this one contiguously.
        let chunk_ends = tensor_d == 0
            || (old_shape[tensor_d - 1] != 1
                && old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
        if chunk_ends {
            while view_d >= 0 && (view_numel < tensor_numel || shape[view_d as usize] == 1) {
                strides[view_d as usize] = view_numel * chunk_base_stride;
                view_numel *= shape[view_d as usize];
                view_d -= 1;
            }
            if view_numel != tensor_numel {
                return None;
            }
            if tensor_d > 0 {
                chunk_base_stride = old_strides[tensor_d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    (view_d == -1).then_some(strides)
}

impl Tensor {
    /// `self` seen through `layout`. Quantized tensors only allow views that keep whole
    /// blocks addressable (see [`crate::ops::quantized`]); others fail naming `op`.
    fn checked_view(&self, op: &str, layout: Layout) -> Result<Tensor> {
        if self.dtype().is_quantized() {
            crate::ops::quantized::check_block_view(op, self.dtype(), &layout)?;
        }
        Ok(self.with_layout(layout))
    }

    /// True when the elements are row-major with no gaps.
    pub fn is_contiguous(&self) -> bool {
        self.layout().is_contiguous()
    }

    /// A contiguous tensor with the same elements: `self` (shared) when already contiguous,
    /// else a copy.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            Ok(self.clone())
        } else {
            let out = self.backend().contiguous(self);
            crate::autograd::record_ok(out, &[self], || Op::Reshape)
        }
    }

    /// The same elements in `shape` (one `-1` inferred). A view when the layout allows (always
    /// for contiguous tensors), else a copy.
    pub fn reshape(&self, shape: &[isize]) -> Result<Tensor> {
        let new_shape = resolve_shape("reshape", self.shape(), self.numel(), shape)?;
        let out = match view_strides(self.layout(), &new_shape) {
            Some(strides) => self.checked_view(
                "reshape",
                Layout {
                    shape: new_shape,
                    strides,
                    offset: self.layout().offset,
                },
            ),
            None => {
                let c = self.backend().contiguous(self)?;
                Ok(c.with_layout(Layout::contiguous(&new_shape)))
            }
        };
        crate::autograd::record_ok(out, &[self], || Op::Reshape)
    }

    /// Like [`Tensor::reshape`] but never copies: fails when the layout cannot be viewed as
    /// `shape`.
    pub fn view(&self, shape: &[isize]) -> Result<Tensor> {
        let new_shape = resolve_shape("view", self.shape(), self.numel(), shape)?;
        let out = match view_strides(self.layout(), &new_shape) {
            Some(strides) => self.checked_view(
                "view",
                Layout {
                    shape: new_shape,
                    strides,
                    offset: self.layout().offset,
                },
            ),
            None => bail!(
                "view: a tensor of shape {} with strides {:?} is not contiguous enough to view as {}; use reshape",
                shape_str(self.shape()),
                self.layout().strides,
                shape_str(&new_shape)
            ),
        };
        crate::autograd::record_ok(out, &[self], || Op::Reshape)
    }

    /// All elements as one dimension.
    pub fn flatten(&self) -> Result<Tensor> {
        self.reshape(&[-1])
    }

    /// A view with `shape` (NumPy rules: leading dims added, size-1 dims stretched with
    /// stride 0).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        let l = self.layout();
        let fail = || {
            crate::TensorError(format!(
                "broadcast_to: shape {} cannot be broadcast to {}",
                shape_str(&l.shape),
                shape_str(shape)
            ))
        };
        if shape.len() < l.rank() {
            return Err(fail());
        }
        let lead = shape.len() - l.rank();
        let mut strides = vec![0; shape.len()];
        for (i, &target) in shape.iter().enumerate().skip(lead) {
            let (d, s) = (l.shape[i - lead], l.strides[i - lead]);
            strides[i] = if d == target {
                s
            } else if d == 1 {
                0
            } else {
                return Err(fail());
            };
        }
        let out = self.checked_view(
            "broadcast_to",
            Layout {
                shape: shape.to_vec(),
                strides,
                offset: l.offset,
            },
        );
        crate::autograd::record_ok(out, &[self], || Op::BroadcastTo)
    }

    /// [`Tensor::broadcast_to`] where `-1` keeps the current size of that dimension
    /// (torch.expand).
    pub fn expand(&self, shape: &[isize]) -> Result<Tensor> {
        let lead = shape.len().saturating_sub(self.rank());
        let mut target = Vec::with_capacity(shape.len());
        for (i, &d) in shape.iter().enumerate() {
            if d == -1 && i >= lead {
                target.push(self.shape()[i - lead]);
            } else if d < 0 {
                bail!(
                    "expand: invalid size {d} in {shape:?} for a tensor of shape {}",
                    shape_str(self.shape())
                );
            } else {
                target.push(d as usize);
            }
        }
        self.broadcast_to(&target)
            .map_err(|e| crate::TensorError(e.0.replacen("broadcast_to", "expand", 1)))
    }

    /// A view with dimensions `d0` and `d1` swapped.
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let l = self.layout();
        let a = normalize_dim("transpose", d0, l.rank())?;
        let b = normalize_dim("transpose", d1, l.rank())?;
        let mut nl = l.clone();
        nl.shape.swap(a, b);
        nl.strides.swap(a, b);
        let mut perm: Vec<usize> = (0..l.rank()).collect();
        perm.swap(a, b);
        let out = self.checked_view("transpose", nl);
        crate::autograd::record_ok(out, &[self], || Op::Permute(perm))
    }

    /// A view with the dimensions reordered: dimension `i` of the result is `dims[i]` of self.
    pub fn permute(&self, dims: &[isize]) -> Result<Tensor> {
        let l = self.layout();
        if dims.len() != l.rank() {
            bail!(
                "permute: {} dimensions given for a tensor of shape {} (rank {})",
                dims.len(),
                shape_str(&l.shape),
                l.rank()
            );
        }
        let mut seen = vec![false; l.rank()];
        let mut nl = Layout {
            shape: Vec::with_capacity(l.rank()),
            strides: Vec::with_capacity(l.rank()),
            offset: l.offset,
        };
        for &d in dims {
            let d = normalize_dim("permute", d, l.rank())?;
            if seen[d] {
                bail!("permute: dimension {d} appears twice in {dims:?}");
            }
            seen[d] = true;
            nl.shape.push(l.shape[d]);
            nl.strides.push(l.strides[d]);
        }
        let perm: Vec<usize> = dims
            .iter()
            .map(|&d| normalize_dim("permute", d, l.rank()))
            .collect::<Result<_>>()?;
        let out = self.checked_view("permute", nl);
        crate::autograd::record_ok(out, &[self], || Op::Permute(perm))
    }

    /// A view without size-1 dimensions: all of them (`None`) or `dim` if its size is 1
    /// (another size leaves the tensor unchanged, as in PyTorch).
    pub fn squeeze(&self, dim: Option<isize>) -> Result<Tensor> {
        let l = self.layout();
        let mut nl = Layout {
            shape: Vec::with_capacity(l.rank()),
            strides: Vec::with_capacity(l.rank()),
            offset: l.offset,
        };
        let only = match dim {
            Some(d) => Some(normalize_dim("squeeze", d, l.rank())?),
            None => None,
        };
        for (i, (&d, &s)) in l.shape.iter().zip(&l.strides).enumerate() {
            let drop = d == 1 && only.is_none_or(|o| o == i);
            if !drop {
                nl.shape.push(d);
                nl.strides.push(s);
            }
        }
        let out = self.checked_view("squeeze", nl);
        crate::autograd::record_ok(out, &[self], || Op::Reshape)
    }

    /// A view with a new size-1 dimension at `dim` (`-1` appends).
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let l = self.layout();
        let d = normalize_dim("unsqueeze", dim, l.rank() + 1)?;
        let mut nl = l.clone();
        let stride = if d < l.rank() {
            l.strides[d] * l.shape[d]
        } else {
            1
        };
        nl.shape.insert(d, 1);
        nl.strides.insert(d, stride);
        let out = self.checked_view("unsqueeze", nl);
        crate::autograd::record_ok(out, &[self], || Op::Reshape)
    }

    /// A view of `len` elements of `dim` starting at `start`.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let l = self.layout();
        let d = normalize_dim("narrow", dim, l.rank())?;
        let size = l.shape[d];
        if start.checked_add(len).is_none_or(|end| end > size) {
            bail!(
                "narrow: start {start} + length {len} exceeds dimension {d} of size {size} (shape {})",
                shape_str(&l.shape)
            );
        }
        let mut nl = l.clone();
        nl.shape[d] = len;
        if len > 0 {
            nl.offset += start * l.strides[d];
        }
        let out = self.checked_view("narrow", nl);
        crate::autograd::record_ok(out, &[self], || Op::Slice {
            dim: d,
            start,
            step: 1,
        })
    }

    /// A view of `start..end` with `step` along `dim`, with Python slice semantics: negative
    /// bounds count from the end, out-of-range bounds clamp, `None` means the whole side.
    pub fn slice(
        &self,
        dim: isize,
        start: Option<isize>,
        end: Option<isize>,
        step: usize,
    ) -> Result<Tensor> {
        let l = self.layout();
        let d = normalize_dim("slice", dim, l.rank())?;
        if step == 0 {
            bail!("slice: step must be at least 1");
        }
        let size = l.shape[d] as isize;
        let clamp = |i: isize| -> isize {
            let i = if i < 0 { i + size } else { i };
            i.clamp(0, size)
        };
        let s = start.map_or(0, clamp);
        let e = end.map_or(size, clamp);
        let len = if e > s {
            ((e - s) as usize).div_ceil(step)
        } else {
            0
        };
        let mut nl = l.clone();
        nl.shape[d] = len;
        nl.strides[d] = l.strides[d] * step;
        if len > 0 {
            nl.offset += s as usize * l.strides[d];
        }
        let out = self.checked_view("slice", nl);
        crate::autograd::record_ok(out, &[self], || Op::Slice {
            dim: d,
            start: s as usize,
            step,
        })
    }

    /// A view of element `index` along `dim`, without that dimension.
    pub fn select(&self, dim: isize, index: isize) -> Result<Tensor> {
        let l = self.layout();
        let d = normalize_dim("select", dim, l.rank())?;
        let size = l.shape[d];
        let i = if index < 0 {
            index + size as isize
        } else {
            index
        };
        if i < 0 || i >= size as isize {
            bail!("select: index {index} is out of bounds for dimension {d} of size {size}");
        }
        let mut nl = l.clone();
        nl.offset += i as usize * l.strides[d];
        nl.shape.remove(d);
        nl.strides.remove(d);
        let out = self.checked_view("select", nl);
        crate::autograd::record_ok(out, &[self], || Op::Select {
            dim: d,
            index: i as usize,
        })
    }
}
