//! Matrix-product throughput of the CPU backend: GFLOP/s of square f32 and f16 products at
//! 512, 1024 and 2048 (flops = 2 n^3), the median of several timed runs after a warm-up.
//! Run with `cargo bench -p tl-tensor --bench matmul`; pass sizes as arguments to override
//! (`cargo bench -p tl-tensor --bench matmul -- 256 4096`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use tl_tensor::{DType, Tensor};

/// Timed runs per size (after one warm-up run); fewer for the largest sizes.
fn runs_for(n: usize) -> usize {
    if n >= 2048 { 5 } else { 9 }
}

fn random_matrix(rng: &mut ChaCha8Rng, n: usize, dtype: DType) -> Tensor {
    let data: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_f64(&data, &[n, n], dtype).expect("n*n values fill [n, n]")
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; numeric arguments select the sizes.
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![512, 1024, 2048];
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("matmul: square products, median of timed runs after a warm-up ({threads} threads)");
    println!(
        "{:>8} {:>6} {:>12} {:>10}",
        "dtype", "n", "median ms", "GFLOP/s"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for dtype in [DType::F32, DType::F16] {
        for &n in &sizes {
            let a = random_matrix(&mut rng, n, dtype);
            let b = random_matrix(&mut rng, n, dtype);
            let product = || a.matmul(&b).expect("square operands of one dtype multiply");
            std::hint::black_box(product());
            let times: Vec<f64> = (0..runs_for(n))
                .map(|_| {
                    let start = Instant::now();
                    std::hint::black_box(product());
                    start.elapsed().as_secs_f64()
                })
                .collect();
            let t = median(times);
            let gflops = 2.0 * (n as f64).powi(3) / t / 1e9;
            println!(
                "{:>8} {:>6} {:>12.2} {:>10.1}",
                dtype.name(),
                n,
                t * 1e3,
                gflops
            );
        }
    }
}
