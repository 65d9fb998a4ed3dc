//! Shared helpers for the core kernel tests: seeded random inputs, views that are not
//! contiguous, naive f64 broadcasting and the tolerance check from TARGETS.md.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tl_tensor::{DType, Tensor};

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Random values in [-2, -0.1] U [0.1, 2]: never zero, so sign and division bugs show.
pub fn values(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let m: f64 = rng.random_range(0.1..2.0);
            if rng.random::<bool>() { m } else { -m }
        })
        .collect()
}

/// Random non-zero ints in [-9, 9].
pub fn int_values(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let m = rng.random_range(1..10) as f64;
            if rng.random::<bool>() { m } else { -m }
        })
        .collect()
}

pub fn bool_values(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random::<bool>() as u8 as f64).collect()
}

/// Random values suited to `dtype`.
pub fn values_for(rng: &mut ChaCha8Rng, n: usize, dtype: DType) -> Vec<f64> {
    match dtype {
        DType::I64 => int_values(rng, n),
        DType::Bool => bool_values(rng, n),
        _ => values(rng, n),
    }
}

/// The values as stored in `dtype` (rounded), so references see what the kernel sees.
pub fn rounded(v: &[f64], dtype: DType) -> Vec<f64> {
    Tensor::from_f64(v, &[v.len()], dtype).unwrap().to_vec_f64()
}

/// How a test tensor is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Contiguous,
    /// All dims reversed in memory, then permuted back (a transposed view).
    Transposed,
    /// Every other element of a twice-as-long last dim (a stepped slice).
    Strided,
}

pub const KINDS: [Kind; 3] = [Kind::Contiguous, Kind::Transposed, Kind::Strided];

/// A tensor with logical `values` in `shape`, laid out as `kind`.
pub fn make(values: &[f64], shape: &[usize], dtype: DType, kind: Kind) -> Tensor {
    let t = Tensor::from_f64(values, shape, dtype).unwrap();
    let rank = shape.len();
    match kind {
        Kind::Contiguous => t,
        Kind::Transposed => {
            let rev: Vec<isize> = (0..rank as isize).rev().collect();
            let stored = t.permute(&rev).unwrap().contiguous().unwrap();
            let v = stored.permute(&rev).unwrap();
            assert!(rank < 2 || shape.iter().filter(|&&d| d > 1).count() < 2 || !v.is_contiguous());
            v
        }
        Kind::Strided => {
            if rank == 0 {
                return t;
            }
            let last = shape[rank - 1];
            let mut wide_shape = shape.to_vec();
            wide_shape[rank - 1] = 2 * last;
            let mut wide = Vec::with_capacity(values.len() * 2);
            for row in values.chunks(last.max(1)) {
                for &x in row {
                    wide.push(x);
                    wide.push(7.0); // junk that must never be read
                }
            }
            if last == 0 {
                wide.clear();
            }
            let w = Tensor::from_f64(&wide, &wide_shape, dtype).unwrap();
            let v = w.slice(-1, Some(0), None, 2).unwrap();
            assert!(last <= 1 || !v.is_contiguous());
            v
        }
    }
}

/// ||out - ref|| / ||ref|| (absolute when the reference is all zeros).
pub fn rel_err(out: &[f64], reference: &[f64]) -> f64 {
    assert_eq!(out.len(), reference.len(), "length mismatch");
    let mut diff = 0.0;
    let mut norm = 0.0;
    for (&o, &r) in out.iter().zip(reference) {
        if o.is_nan() && r.is_nan() {
            continue;
        }
        if o.is_infinite() && r.is_infinite() && o.signum() == r.signum() {
            continue;
        }
        diff += (o - r) * (o - r);
        norm += r * r;
    }
    if norm == 0.0 {
        diff.sqrt()
    } else {
        (diff / norm).sqrt()
    }
}

pub fn tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-5,
        DType::F16 | DType::BF16 => 1e-2,
        DType::I64 | DType::Bool => 0.0,
        // Quantized results are compared with references built from the dequantized values.
        _ => 1e-5,
    }
}

/// Checks `out` against `reference` with the tolerance of `dtype` (exact for ints and bools).
pub fn check(what: &str, out: &Tensor, reference: &[f64], dtype: DType) {
    let got = out.to_vec_f64();
    let err = rel_err(&got, reference);
    assert!(
        err <= tolerance(dtype),
        "{what}: relative error {err} above {} (dtype {dtype})\n got {:?}\n ref {:?}",
        tolerance(dtype),
        &got[..got.len().min(8)],
        &reference[..reference.len().min(8)]
    );
}

/// Row-major multi-index of flat index `i` in `shape`.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

/// Flat row-major index of `idx` in `shape`.
pub fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// The value of `values` (row-major in `shape`) seen at `out_idx` of a broadcast to a shape
/// of rank `out_idx.len()`.
pub fn broadcast_get(values: &[f64], shape: &[usize], out_idx: &[usize]) -> f64 {
    let lead = out_idx.len() - shape.len();
    let idx: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(d, &s)| if s == 1 { 0 } else { out_idx[lead + d] })
        .collect();
    values[ravel(&idx, shape)]
}

/// NumPy broadcast of two shapes (the test's own version).
pub fn broadcast(a: &[usize], b: &[usize]) -> Vec<usize> {
    let rank = a.len().max(b.len());
    (0..rank)
        .map(|i| {
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
            da.max(db)
        })
        .collect()
}

pub const FLOAT_DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];
pub const ALL_DTYPES: [DType; 5] = [DType::F32, DType::F16, DType::BF16, DType::I64, DType::Bool];

/// Shapes used by most tests: odd sizes and ranks 0 to 4.
pub const SHAPES: [&[usize]; 8] = [
    &[],
    &[1],
    &[7],
    &[33],
    &[129],
    &[3, 5],
    &[4, 1, 9],
    &[2, 3, 4, 5],
];
