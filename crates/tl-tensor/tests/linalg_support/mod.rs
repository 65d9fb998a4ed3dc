//! Helpers shared by the linalg and nn kernel tests: seeded random inputs, views with
//! non-contiguous layouts, and the relative-error check against f64 references.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tl_tensor::{DType, Layout, Tensor};

pub const FLOATS: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform values in [-1, 1): random, never all zero.
pub fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A random contiguous tensor of `shape` in `dtype`.
pub fn rand_tensor(rng: &mut ChaCha8Rng, shape: &[usize], dtype: DType) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f64(&rand_vec(rng, n), shape, dtype).unwrap()
}

/// A random tensor of logical `shape` whose last two dims are stored transposed, so the view
/// is not contiguous (rank >= 2).
pub fn rand_transposed(rng: &mut ChaCha8Rng, shape: &[usize], dtype: DType) -> Tensor {
    let r = shape.len();
    assert!(r >= 2);
    let mut stored = shape.to_vec();
    stored.swap(r - 1, r - 2);
    let base = rand_tensor(rng, &stored, dtype);
    let mut strides = base.layout().strides.clone();
    strides.swap(r - 1, r - 2);
    let view = base.with_layout(Layout {
        shape: shape.to_vec(),
        strides,
        offset: 0,
    });
    assert!(!view.layout().is_contiguous() || shape[r - 1] == 1 || shape[r - 2] == 1);
    view
}

/// A random tensor of `shape` that is a strided slice (every other element of a wider last
/// dim, at an offset), so the view is not contiguous.
pub fn rand_strided(rng: &mut ChaCha8Rng, shape: &[usize], dtype: DType) -> Tensor {
    let r = shape.len();
    assert!(r >= 1);
    let mut stored = shape.to_vec();
    stored[r - 1] = shape[r - 1] * 2 + 1;
    let base = rand_tensor(rng, &stored, dtype);
    let mut strides = base.layout().strides.clone();
    strides[r - 1] = 2;
    base.with_layout(Layout {
        shape: shape.to_vec(),
        strides,
        offset: 1,
    })
}

/// Tolerance on the relative error for results of `dtype` (TARGETS.md).
pub fn tol(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-5,
        _ => 1e-2,
    }
}

/// ||out - ref|| / ||ref|| (absolute error when the reference is zero).
pub fn rel_err(out: &[f64], reference: &[f64]) -> f64 {
    assert_eq!(out.len(), reference.len(), "length mismatch");
    let diff: f64 = out
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = reference.iter().map(|b| b * b).sum::<f64>().sqrt();
    if norm == 0.0 { diff } else { diff / norm }
}

/// Asserts shape, dtype and values of `out` against an f64 reference.
pub fn assert_close(out: &Tensor, shape: &[usize], reference: &[f64], dtype: DType, what: &str) {
    assert_eq!(out.shape(), shape, "{what}: shape");
    assert_eq!(out.dtype(), dtype, "{what}: dtype");
    let values = out.to_vec_f64();
    assert!(
        values.iter().all(|v| !v.is_nan()),
        "{what}: NaN in the result"
    );
    let err = rel_err(&values, reference);
    assert!(
        err <= tol(dtype),
        "{what}: relative error {err:e} above {:e}",
        tol(dtype)
    );
}

/// Row-major strides of a shape.
pub fn strides_of(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The multi-index of flat position `flat` in `shape`.
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    idx
}

/// Flat position of a multi-index in a row-major `shape`.
pub fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}
