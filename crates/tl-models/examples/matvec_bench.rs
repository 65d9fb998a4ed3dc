//! Times the quantized mat-vec on random packed data of every type:
//! `cargo run --release -p tl-models --example matvec_bench -- [ROWS COLS]` (default 2048 2048).

use std::time::Instant;
use tl_models::quant::{ALL_TYPES, GgmlType, matvec_with_threads, quantize_row};

/// Deterministic pseudo-random bytes (xorshift), with every f16 block scale set to 0.01 so the
/// data is finite.
fn packed(kind: GgmlType, n: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    if !kind.is_quantized() {
        let x: Vec<f32> = (0..n)
            .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        return quantize_row(kind, &x).expect("float types quantize");
    }
    let mut bytes: Vec<u8> = (0..kind.bytes_for(n).expect("whole blocks"))
        .map(|_| next() as u8)
        .collect();
    let scale = half::f16::from_f32(0.01).to_le_bytes();
    let fields: &[usize] = match kind {
        GgmlType::Q6_K => &[208],
        GgmlType::Q4_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        _ => &[0],
    };
    for block in bytes.chunks_exact_mut(kind.block_bytes()) {
        for &at in fields {
            block[at..at + 2].copy_from_slice(&scale);
        }
    }
    bytes
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (rows, cols) = match args[..] {
        [r, c, ..] => (r, c),
        _ => (2048, 2048),
    };
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let x: Vec<f32> = (0..cols)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
        .collect();
    let mut y = vec![0f32; rows];
    println!("[{rows} x {cols}], {all} threads available");
    for kind in ALL_TYPES {
        let w = packed(kind, rows * cols);
        for threads in [1, all] {
            matvec_with_threads(kind, &w, rows, cols, &x, &mut y, threads).expect("sizes agree");
            let reps = 20;
            let t = Instant::now();
            for _ in 0..reps {
                matvec_with_threads(kind, &w, rows, cols, &x, &mut y, threads)
                    .expect("sizes agree");
            }
            let s = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{:>5} {threads:>3} threads: {:8.3} ms  {:6.2} GB/s  {:6.2} Gweights/s",
                kind.name(),
                s * 1e3,
                w.len() as f64 / s / 1e9,
                (rows * cols) as f64 / s / 1e9
            );
        }
    }
}
