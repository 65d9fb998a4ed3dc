//! The execution model on CUDA: many threads each on its own stream, reads while hundreds of
//! ops are pending, counted syncs, device errors reported at the next read, and clear errors
//! for mixed devices. Without a GPU each test prints "skipped: no CUDA device (REASON)".

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tl_tensor::{BinaryOp, DType, Device, ReduceOp, Tensor, UnaryOp, stats};

const GPU: Device = Device::Cuda(0);

/// The counters are process-wide: the tests of this file run one at a time so that each sees
/// only its own syncs and launches.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn gpu() -> bool {
    match tl_cuda::init(0) {
        Ok(_) => true,
        Err(e) => {
            println!("skipped: no CUDA device ({e})");
            false
        }
    }
}

fn random(seed: u64, shape: &[usize]) -> Tensor {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| r.random_range(-1.0..1.0)).collect();
    Tensor::from_f32(v, shape).unwrap()
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let n: f64 = b.iter().map(|y| y * y).sum();
    d.sqrt() / n.sqrt().max(1e-30)
}

/// One thread's work: a small MLP-like chain mixing its own tensors with a shared weight
/// made on another thread (cross-stream use).
fn chain(x: &Tensor, w: &Tensor, steps: usize) -> Tensor {
    let mut h = x.clone();
    for _ in 0..steps {
        h = h.matmul(w).unwrap().unary(UnaryOp::Tanh).unwrap();
        h = h.binary(BinaryOp::Add, x).unwrap().softmax(-1).unwrap();
    }
    h
}

#[test]
fn many_threads_each_with_its_own_stream() {
    let _one_at_a_time = serial();
    if !gpu() {
        return;
    }
    let w_host = random(100, &[48, 48]);
    let w = w_host.to_device(GPU).unwrap();
    let threads: Vec<_> = (0..12u64)
        .map(|t| {
            let (w, w_host) = (w.clone(), w_host.clone());
            std::thread::spawn(move || {
                let x_host = random(t, &[17, 48]);
                let x = x_host.to_device(GPU).unwrap();
                let got = chain(&x, &w, 40);
                let want = chain(&x_host, &w_host, 40);
                let e = rel_err(&got.to_vec_f64(), &want.to_vec_f64());
                assert!(e < 1e-5, "thread {t}: relative error {e:e}");
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a worker thread failed");
    }
}

#[test]
fn reading_with_hundreds_of_ops_pending_returns_the_result() {
    let _one_at_a_time = serial();
    if !gpu() {
        return;
    }
    let x = random(7, &[1000]).to_device(GPU).unwrap();
    let one = Tensor::scalar(1.0, DType::F32).to_device(GPU).unwrap();
    let mut acc = x.clone();
    // 600 queued launches, then one read: it must submit, wait once and see every op.
    for _ in 0..600 {
        acc = acc.binary(BinaryOp::Add, &one).unwrap();
    }
    let before = stats::snapshot();
    let total = acc
        .reduce(ReduceOp::Sum, None, false)
        .unwrap()
        .to_scalar_f64()
        .unwrap();
    let after = stats::snapshot().since(&before);
    let want: f64 = x.to_vec_f64().iter().map(|v| v + 600.0).sum();
    assert!(
        (total - want).abs() < 1e-2 * want.abs().max(1.0),
        "sum {total} vs {want}"
    );
    assert!(after.syncs >= 1, "the read was not counted as a sync");
}

#[test]
fn ops_do_not_sync_and_shapes_stay_on_the_host() {
    let _one_at_a_time = serial();
    if !gpu() {
        return;
    }
    let x = random(8, &[64, 64]).to_device(GPU).unwrap();
    let before = stats::snapshot();
    let mut h = x.clone();
    for _ in 0..50 {
        h = h
            .matmul(&x)
            .unwrap()
            .rms_norm(
                &Tensor::ones(&[64], DType::F32).to_device(GPU).unwrap(),
                1e-6,
            )
            .unwrap();
        assert_eq!(h.shape(), &[64, 64]);
    }
    let mid = stats::snapshot().since(&before);
    assert_eq!(mid.syncs, 0, "ops or shape reads waited for the device");
    assert!(
        mid.kernel_launches >= 100,
        "launches were not counted: {mid:?}"
    );
    let _ = h.to_vec_f32();
    let end = stats::snapshot().since(&before);
    assert_eq!(end.syncs, 1, "one read is one sync");
    assert!(end.device_to_host_bytes >= 64 * 64 * 4);
}

#[test]
fn device_errors_surface_at_the_next_read() {
    let _one_at_a_time = serial();
    if !gpu() {
        return;
    }
    let a = Tensor::from_i64(vec![7, 8, 9], &[3])
        .unwrap()
        .to_device(GPU)
        .unwrap();
    let b = Tensor::from_i64(vec![1, 0, 2], &[3])
        .unwrap()
        .to_device(GPU)
        .unwrap();
    let q = a.binary(BinaryOp::Div, &b).unwrap();
    let e = q.synchronize_for_read().unwrap_err();
    assert!(e.0.contains("division by zero"), "{e}");
    // The fallible readers return the error, printing shows it: no panic.
    let again = a.binary(BinaryOp::Rem, &b).unwrap();
    let e = again
        .reduce(ReduceOp::Sum, None, false)
        .unwrap()
        .to_scalar_f64()
        .unwrap_err();
    assert!(e.0.contains("division by zero"), "{e}");
    let shown = format!("{}", a.binary(BinaryOp::Div, &b).unwrap());
    assert!(
        shown.contains("unreadable") && shown.contains("division by zero"),
        "{shown}"
    );
    let table = random(9, &[4, 3]).to_device(GPU).unwrap();
    let ids = Tensor::from_i64(vec![1, 4], &[2])
        .unwrap()
        .to_device(GPU)
        .unwrap();
    let rows = Tensor::embedding(&table, &ids).unwrap();
    let e = rows.synchronize_for_read().unwrap_err();
    assert!(e.0.contains("out of range"), "{e}");
    // The error was reported once; later work is fine.
    let ok = a.binary(BinaryOp::Add, &b).unwrap().to_vec_i64();
    assert_eq!(ok, vec![8, 8, 11]);
}

#[test]
fn mixing_devices_fails_naming_both() {
    let _one_at_a_time = serial();
    if !gpu() {
        return;
    }
    let host = random(10, &[4, 5]);
    let dev = random(11, &[4, 5]).to_device(GPU).unwrap();
    let e = host.binary(BinaryOp::Add, &dev).unwrap_err();
    assert!(e.0.contains("cuda:0") && e.0.contains("cpu"), "{e}");
    let e = dev.matmul(&host.transpose(0, 1).unwrap()).unwrap_err();
    assert!(e.0.contains("cuda:0") && e.0.contains("cpu"), "{e}");
}

#[test]
fn default_device_places_created_tensors_and_round_trips() {
    let _one_at_a_time = serial();
    if !gpu() {
        return;
    }
    tl_tensor::device::set_thread_default_device(Some(GPU)).unwrap();
    let z = Tensor::zeros(&[3, 5], DType::F16);
    let a = Tensor::arange(0.0, 7.0, 1.0, DType::I64).unwrap();
    let mut rng = tl_tensor::TensorRng::seed_from_u64(3);
    let u = Tensor::rand(&[9], DType::F32, &mut rng);
    tl_tensor::device::set_thread_default_device(None).unwrap();
    assert_eq!((z.device(), a.device(), u.device()), (GPU, GPU, GPU));
    assert_eq!(a.to_vec_i64(), (0..7).collect::<Vec<i64>>());
    assert!(z.to_vec_f64().iter().all(|&v| v == 0.0));
    let mut rng = tl_tensor::TensorRng::seed_from_u64(3);
    assert_eq!(
        u.to_host().unwrap().to_vec_f32(),
        Tensor::rand(&[9], DType::F32, &mut rng).to_vec_f32()
    );
    let shown = format!("{}", a);
    assert!(shown.contains('6'), "{shown}");
}

#[test]
fn write_slice_writes_in_place_on_the_device() {
    let _g = serial();
    if !gpu() {
        return;
    }
    for dt in [DType::F32, DType::F16, DType::BF16] {
        let base = random(50, &[2, 16, 4]).cast(dt).unwrap();
        let src = random(51, &[2, 3, 4]).cast(dt).unwrap();
        let mut want = base.clone();
        want.write_slice_in_place(1, 5, &src).unwrap();
        // Sole owner: one copy kernel into the same storage (a private copy first would be
        // two, the narrow-and-concatenate fallback three).
        let mut d = base.to_device(GPU).unwrap().contiguous().unwrap();
        let src_d = src.to_device(GPU).unwrap();
        let before = stats::snapshot();
        d.write_slice_in_place(1, 5, &src_d).unwrap();
        let used = stats::snapshot().since(&before);
        assert_eq!(
            used.kernel_launches, 1,
            "{dt}: launches of an in-place write"
        );
        assert_eq!(d.device(), GPU);
        assert_eq!(d.to_vec_f64(), want.to_vec_f64(), "{dt}: written values");
        // A clone held elsewhere keeps its values (copy on write).
        let held = d.clone();
        let kept = held.to_vec_f64();
        d.write_slice_in_place(1, 0, &src_d).unwrap();
        assert_eq!(held.to_vec_f64(), kept, "{dt}: a shared storage changed");
        want.write_slice_in_place(1, 0, &src).unwrap();
        assert_eq!(
            d.to_vec_f64(),
            want.to_vec_f64(),
            "{dt}: copy-on-write values"
        );
    }
}

/// A decode-like loop: the same kernels every step, one write at a position that moves, one
/// reduction over a length that grows, and one read per step.
fn decode_like_steps(steps: usize) -> Vec<Vec<f64>> {
    let w = random(60, &[32, 32]).to_device(GPU).unwrap();
    let mut cache = random(62, &[16, 32]).to_device(GPU).unwrap();
    let mut x = random(61, &[1, 32]).to_device(GPU).unwrap();
    let mut out = Vec::new();
    for step in 0..steps {
        for _ in 0..6 {
            x = x.linear(&w, None).unwrap().unary(UnaryOp::Tanh).unwrap();
        }
        cache.write_slice_in_place(0, step, &x).unwrap();
        let seen = cache
            .narrow(0, 0, step + 1)
            .unwrap()
            .reduce(ReduceOp::Mean, Some(&[0]), true)
            .unwrap();
        x = x.binary(BinaryOp::Add, &seen).unwrap();
        out.push(x.to_vec_f64());
    }
    out
}

#[test]
fn repeated_launch_groups_replay_as_graphs_with_the_same_results() {
    let _g = serial();
    if !gpu() {
        return;
    }
    let steps = 12;
    let counted = |group: usize| {
        tl_cuda::set_launch_group_size(group);
        let before = stats::snapshot();
        let out = decode_like_steps(steps);
        (out, stats::snapshot().since(&before))
    };
    let (direct, d) = counted(0);
    let (grouped, g) = counted(64);
    tl_cuda::set_launch_group_size(tl_cuda::DEFAULT_GROUP_SIZE);
    // Same kernels in the same order: bit-identical results.
    assert_eq!(direct, grouped, "grouped submission changed the results");
    assert_eq!(
        d.submissions, d.kernel_launches,
        "group size 0 launches directly"
    );
    assert_eq!(g.kernel_launches, d.kernel_launches);
    // Step 1 launches directly, step 2 captures its group, later steps replay it: about one
    // submission per step instead of one per kernel.
    let per_step = d.kernel_launches / steps as u64;
    assert!(per_step >= 10, "{per_step} launches per step");
    assert!(
        g.submissions <= per_step + 2 * steps as u64,
        "{} submissions for {} launches in {steps} steps",
        g.submissions,
        g.kernel_launches
    );
    assert_eq!(g.syncs, steps as u64, "one sync per step");
}
