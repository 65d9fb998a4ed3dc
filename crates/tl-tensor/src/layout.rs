//! Shape, strides and offset of a tensor view over its storage. Views (transpose, permute,
//! slice, broadcast, reshape of contiguous data) change only the layout, never the data.

use crate::bail;
use crate::error::{Result, shape_str};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub shape: Vec<usize>,
    /// Element strides; 0 for a broadcast dimension.
    pub strides: Vec<usize>,
    /// Element offset of the first element in the storage.
    pub offset: usize,
}

impl Layout {
    /// Row-major contiguous layout of `shape`.
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// True when the elements are laid out row-major with no gaps (the offset may be non-zero).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// Storage offsets of every element in row-major order. Allocation-free callers should use
    /// [`Layout::for_each_offset`].
    pub fn offsets(&self) -> Vec<usize> {
        let mut v = Vec::with_capacity(self.numel());
        self.for_each_offset(|o| v.push(o));
        v
    }

    /// Calls `f` with the storage offset of every element, in row-major order.
    pub fn for_each_offset(&self, mut f: impl FnMut(usize)) {
        let n = self.numel();
        if n == 0 {
            return;
        }
        if self.is_contiguous() {
            for i in 0..n {
                f(self.offset + i);
            }
            return;
        }
        let rank = self.rank();
        let mut idx = vec![0usize; rank];
        let mut off = self.offset;
        for _ in 0..n {
            f(off);
            // Odometer increment from the last dimension.
            let mut d = rank;
            while d > 0 {
                d -= 1;
                idx[d] += 1;
                off += self.strides[d];
                if idx[d] < self.shape[d] {
                    break;
                }
                off -= self.strides[d] * self.shape[d];
                idx[d] = 0;
            }
        }
    }

    /// Normalises a possibly negative dimension index for an op named `op`.
    pub fn dim(&self, op: &str, dim: isize) -> Result<usize> {
        normalize_dim(op, dim, self.rank())
    }
}

pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        strides[i] = s;
        s *= shape[i];
    }
    strides
}

/// Maps `dim` (negative counts from the end) into `0..rank`, or explains the problem.
pub fn normalize_dim(op: &str, dim: isize, rank: usize) -> Result<usize> {
    let d = if dim < 0 { dim + rank as isize } else { dim };
    if d < 0 || d >= rank as isize {
        bail!("{op}: dimension {dim} is out of range for a tensor of rank {rank}");
    }
    Ok(d as usize)
}

/// NumPy broadcasting of two shapes.
pub fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            bail!(
                "{op}: shapes {} and {} cannot be broadcast together (dimension {} is {} vs {})",
                shape_str(a),
                shape_str(b),
                i,
                da,
                db
            );
        };
    }
    Ok(out)
}
