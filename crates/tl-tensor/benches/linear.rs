//! Throughput of the CPU `linear` at batch 1 (decode): GB/s of weight bytes read per second
//! for every weight dtype at the TinyLlama shapes [2048 x 2048], [5632 x 2048] and
//! [32000 x 2048], the median of timed runs after a warm-up. For reference it also measures
//! the machine's read bandwidth (a parallel sum over 512 MiB), the quantized mat-vec with x
//! kept in f32 (the alternative to quantizing x to 8-bit blocks), and a 512-row prefill.
//! Each figure is given twice: wall-clock GB/s of `linear` on all cores, and GB/s per
//! CPU-second of `quant::matvec_with` on one thread (its own CPU time, so a machine shared
//! with other work still shows what one core of the kernel does when it runs). The second
//! reads the file's layout with the one-row kernels; the first reads Q4_0, Q4_1, Q8_0 and
//! Q4_K weights as row panels on CPUs with AVX-512 VNNI (`quant::panels`), so for those two
//! columns time different kernels.
//! Run with `cargo bench -p tl-tensor --bench linear`.

use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;
use tl_tensor::quant::{GgmlType, XPrecision, matvec_with};
use tl_tensor::{CpuStorage, DType, HostBuf, Tensor};

const SHAPES: [(usize, usize); 3] = [(2048, 2048), (5632, 2048), (32000, 2048)];

/// CPU seconds used by the calling thread so far.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; the clock id is a constant Linux provides.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Median CPU seconds of the calling thread over `runs` calls of `f` (after a warm-up).
fn cpu_time(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..runs)
            .map(|_| {
                let t = thread_cpu_seconds();
                f();
                thread_cpu_seconds() - t
            })
            .collect(),
    )
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Median seconds of `runs` calls of `f` after one warm-up call.
fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Packed random weights of `kind`: random bytes with each block's f16 scale fields set to
/// small finite values (random bytes there could be inf or NaN).
fn random_packed(kind: GgmlType, n: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..kind.bytes_for(n).expect("whole blocks"))
        .map(|_| rng.random())
        .collect();
    let scale_fields: &[usize] = match kind {
        GgmlType::Q4_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        _ => &[],
    };
    for block in bytes.chunks_exact_mut(kind.block_bytes()) {
        for &at in scale_fields {
            let v = f16::from_f32(rng.random_range(-0.05f32..0.05));
            block[at..at + 2].copy_from_slice(&v.to_le_bytes());
        }
    }
    bytes
}

fn weight(kind: GgmlType, rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Tensor {
    let n = rows * cols;
    match kind {
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
            let v: Vec<f64> = (0..n).map(|_| rng.random_range(-0.05..0.05)).collect();
            Tensor::from_f64(&v, &[rows, cols], kind.dtype()).expect("shape fits")
        }
        q => Tensor::from_quantized(
            q,
            HostBuf::from_vec(random_packed(q, n, rng)),
            &[rows, cols],
        )
        .expect("whole blocks"),
    }
}

/// The packed bytes of a contiguous host tensor of any float or quantized dtype.
fn packed_bytes(t: &Tensor) -> &[u8] {
    fn bytes_of<T>(v: &[T]) -> &[u8] {
        // SAFETY: f32/f16/bf16 are plain data; the view covers exactly the slice.
        unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
    }
    match t.cpu_storage().expect("host tensor") {
        CpuStorage::F32(v) => bytes_of(v),
        CpuStorage::F16(v) => bytes_of(v),
        CpuStorage::BF16(v) => bytes_of(v),
        CpuStorage::Quantized(_, b, _) => b,
        other => panic!("no packed bytes for {}", other.dtype()),
    }
}

/// GB/s of reading 512 MiB with one thread and with all (the memory-bandwidth floor).
fn read_bandwidth() -> (f64, f64) {
    use tl_tensor::device::host_read_bandwidth;
    let bytes = 512 << 20;
    (
        host_read_bandwidth(bytes, 5, false) / 1e9,
        host_read_bandwidth(bytes, 5, true) / 1e9,
    )
}

fn main() {
    let threads = rayon::current_num_threads();
    let (one, all) = read_bandwidth();
    println!(
        "read bandwidth (sum of 512 MiB f32): 1 thread {one:.1} GB/s, {threads} threads {all:.1} GB/s"
    );
    println!();
    println!("linear, batch 1 (x f32 [1, 2048]): median of 20 runs, weight bytes / time");
    println!(
        "{:>6} {:>14} {:>10} {:>10} {:>8} {:>21}",
        "dtype", "shape", "MB", "ms", "GB/s", "1-core rows GB/s/cpu"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let kinds = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ];
    for kind in kinds {
        for (rows, cols) in SHAPES {
            let w = weight(kind, rows, cols, &mut rng);
            let xv: Vec<f64> = (0..cols).map(|_| rng.random_range(-1.0..1.0)).collect();
            let x = Tensor::from_f64(&xv, &[1, cols], DType::F32).expect("shape fits");
            let bytes = kind.bytes_for(rows * cols).expect("whole blocks") as f64;
            let s = time(20, || {
                std::hint::black_box(x.linear(&w, None).expect("linear runs"));
            });
            let packed = w.contiguous().expect("copy");
            let raw = packed_bytes(&packed);
            let xs: Vec<f32> = xv.iter().map(|&v| v as f32).collect();
            let mut y = vec![0f32; rows];
            let c = cpu_time(10, || {
                matvec_with(kind, raw, rows, cols, &xs, &mut y, XPrecision::Fast, false)
                    .expect("sizes match")
            });
            println!(
                "{:>6} {:>14} {:>10.1} {:>10.3} {:>8.1} {:>21.1}",
                kind.name(),
                format!("{rows}x{cols}"),
                bytes / 1e6,
                s * 1e3,
                bytes / s / 1e9,
                bytes / c / 1e9
            );
        }
    }

    println!();
    println!(
        "quantized mat-vec [5632 x 2048], one thread, GB/s per CPU-second: x quantized to 8-bit blocks vs x kept in f32"
    );
    println!("{:>6} {:>12} {:>12}", "dtype", "q8 x", "f32 x");
    for kind in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
        let (rows, cols) = (5632, 2048);
        let packed = random_packed(kind, rows * cols, &mut rng);
        let x: Vec<f32> = (0..cols).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut y = vec![0f32; rows];
        let bytes = packed.len() as f64;
        let mut gbs = |p: XPrecision| {
            bytes
                / time(20, || {
                    matvec_with(kind, &packed, rows, cols, &x, &mut y, p, true)
                        .expect("sizes match")
                })
                / 1e9
        };
        let fast = gbs(XPrecision::Fast);
        let exact = gbs(XPrecision::F32);
        println!("{:>6} {:>12.1} {:>12.1}", kind.name(), fast, exact);
    }

    println!();
    println!("prefill: linear of x f32 [512, 2048] with W [5632 x 2048]");
    println!("{:>6} {:>10} {:>10}", "dtype", "ms", "GFLOP/s");
    for kind in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_K,
    ] {
        let (rows, cols, m) = (5632, 2048, 512);
        let w = weight(kind, rows, cols, &mut rng);
        let xv: Vec<f64> = (0..m * cols).map(|_| rng.random_range(-1.0..1.0)).collect();
        let x = Tensor::from_f64(&xv, &[m, cols], DType::F32).expect("shape fits");
        let s = time(3, || {
            std::hint::black_box(x.linear(&w, None).expect("linear runs"));
        });
        let flops = 2.0 * (m * rows * cols) as f64;
        println!(
            "{:>6} {:>10.1} {:>10.1}",
            kind.name(),
            s * 1e3,
            flops / s / 1e9
        );
    }
}
