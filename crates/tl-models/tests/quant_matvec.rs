//! Quantized mat-vec for every type against dequantize + f64 dot, and quantizer round trips.

mod common;

use common::*;
use half::f16;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tl_models::quant::{ALL_TYPES, GgmlType, dequantize_row, matvec, quantize_row};

/// Random packed data for `rows` rows of `cols` values: random bytes, with each block's f16
/// scale fields set to finite values of a sensible size (random bytes there could be inf/NaN).
fn random_packed(kind: GgmlType, rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let n = rows * cols;
    if !kind.is_quantized() {
        return quantize_row(kind, &random_vec(rng, n)).unwrap();
    }
    let mut bytes: Vec<u8> = (0..kind.bytes_for(n).unwrap())
        .map(|_| rng.random())
        .collect();
    let scale_fields: &[usize] = match kind {
        GgmlType::Q4_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        _ => unreachable!(),
    };
    for block in bytes.chunks_exact_mut(kind.block_bytes()) {
        for &at in scale_fields {
            let v = f16::from_f32(rng.random_range(-0.05f32..0.05));
            block[at..at + 2].copy_from_slice(&v.to_le_bytes());
        }
    }
    bytes
}

fn reference_matvec(kind: GgmlType, w: &[u8], rows: usize, cols: usize, x: &[f32]) -> Vec<f64> {
    let mut dense = vec![0f32; rows * cols];
    dequantize_row(kind, w, &mut dense).unwrap();
    (0..rows)
        .map(|r| {
            dense[r * cols..(r + 1) * cols]
                .iter()
                .zip(x)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum()
        })
        .collect()
}

#[test]
fn matvec_every_type_matches_dequantized_f64_dot() {
    let mut rng = rng(7);
    for kind in ALL_TYPES {
        for (rows, cols) in [(1, 256), (37, 512), (5, 1024)] {
            let w = random_packed(kind, rows, cols, &mut rng);
            let x = random_vec(&mut rng, cols);
            let mut y = vec![0f32; rows];
            matvec(kind, &w, rows, cols, &x, &mut y).unwrap();
            let reference = reference_matvec(kind, &w, rows, cols, &x);
            let err = rel_err(&y, &reference);
            assert!(
                err < 1e-5,
                "{} [{rows}, {cols}]: relative error {err}",
                kind.name()
            );
        }
    }
}

#[test]
fn matvec_threaded_path_agrees_with_single_rows() {
    let mut rng = rng(11);
    // 320 x 1024 is above the threading threshold; 8-row slices are below it.
    let (rows, cols) = (320, 1024);
    for kind in [
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
        GgmlType::F16,
    ] {
        let w = random_packed(kind, rows, cols, &mut rng);
        let x = random_vec(&mut rng, cols);
        let mut y = vec![0f32; rows];
        matvec(kind, &w, rows, cols, &x, &mut y).unwrap();
        let reference = reference_matvec(kind, &w, rows, cols, &x);
        assert!(rel_err(&y, &reference) < 1e-5, "{}", kind.name());
        let row_bytes = kind.bytes_for(cols).unwrap();
        for start in [0, 100, 312] {
            let mut part = vec![0f32; 8];
            matvec(
                kind,
                &w[start * row_bytes..(start + 8) * row_bytes],
                8,
                cols,
                &x,
                &mut part,
            )
            .unwrap();
            assert_eq!(
                &part[..],
                &y[start..start + 8],
                "{} rows {start}..",
                kind.name()
            );
        }
    }
}

#[test]
fn matvec_rejects_mismatched_sizes() {
    let w = vec![0u8; 4 * 34];
    let x = vec![1f32; 64];
    let mut y = vec![0f32; 2];
    let e = matvec(GgmlType::Q8_0, &w[..100], 2, 64, &x, &mut y)
        .unwrap_err()
        .to_string();
    assert!(e.contains("136 bytes") && e.contains("100"), "{e}");
    let e = matvec(GgmlType::Q8_0, &w, 2, 60, &x[..60], &mut y)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a whole number"), "{e}");
    let e = matvec(GgmlType::Q8_0, &w, 2, 64, &x[..32], &mut y)
        .unwrap_err()
        .to_string();
    assert!(e.contains("x of length 64"), "{e}");
    let e = dequantize_row(GgmlType::Q4_K, &w, &mut vec![0f32; 256])
        .unwrap_err()
        .to_string();
    assert!(e.contains("144 bytes"), "{e}");
    let e = quantize_row(GgmlType::Q6_K, &x).unwrap_err().to_string();
    assert!(e.contains("Q6_K"), "{e}");
}

#[test]
fn quantize_dequantize_round_trip_within_half_a_step() {
    let mut rng = rng(3);
    let x = random_vec(&mut rng, 32 * 40);
    for kind in [GgmlType::Q8_0, GgmlType::Q4_0] {
        let q = quantize_row(kind, &x).unwrap();
        assert_eq!(q.len(), kind.bytes_for(x.len()).unwrap());
        let mut back = vec![0f32; x.len()];
        dequantize_row(kind, &q, &mut back).unwrap();
        for (b, (xs, ys)) in x.chunks(32).zip(back.chunks(32)).enumerate() {
            let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
            // Step size d; allow for d being rounded to f16 and, in Q4_0, the top value clamped.
            let (step, bound) = match kind {
                GgmlType::Q8_0 => (amax / 127.0, 0.6),
                _ => (amax / 8.0, 1.01),
            };
            for (a, b2) in xs.iter().zip(ys) {
                assert!(
                    (a - b2).abs() <= bound * step + 1e-7,
                    "{} block {b}: {a} vs {b2}",
                    kind.name()
                );
            }
        }
    }
    for kind in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
        let q = quantize_row(kind, &x).unwrap();
        let mut back = vec![0f32; x.len()];
        dequantize_row(kind, &q, &mut back).unwrap();
        let reference: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let tol = if kind == GgmlType::F32 { 0.0 } else { 1e-2 };
        assert!(rel_err(&back, &reference) <= tol, "{}", kind.name());
    }
}

#[test]
fn type_table_is_consistent() {
    for kind in ALL_TYPES {
        assert_eq!(GgmlType::from_id(kind.id()), Some(kind));
        assert_eq!(GgmlType::from_name(kind.name()), Some(kind));
    }
    assert_eq!(GgmlType::Q4_K.bytes_for(512).unwrap(), 288);
    assert_eq!(GgmlType::Q6_K.bytes_for(256).unwrap(), 210);
    assert_eq!(GgmlType::from_id(6), None);
    assert_eq!(tl_models::quant::ggml_type_name(6), Some("Q5_0"));
}
