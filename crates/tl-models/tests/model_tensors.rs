//! `Model::tensor` on real files: stored types kept (quantized stay packed), zero-copy views of
//! the map, values equal to `Model::dequantize`, `linear` and `embedding` reading the packed
//! weights, and loading every tensor adding almost no anonymous memory. Uses the stories260K
//! GGUF of `../shared/models` and SmolLM2-135M-Instruct (Q4_1) from the `tl chat` cache; each
//! part is skipped, saying why, when its file is absent.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use tl_models::Model;
use tl_tensor::{DType, Tensor};

fn stories() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/models/tinyllamas-stories-260k-f32.gguf")
}

fn smollm2() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".cache/tensorlogic/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    p.is_file().then_some(p)
}

/// Held by each test for its whole run: the memory check must not see another test's
/// allocations.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Anonymous (non-file) resident memory of this process, in bytes.
fn rss_anon() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn rel_err(got: &[f64], reference: &[f64]) -> f64 {
    let diff: f64 = got
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    let norm: f64 = reference.iter().map(|b| b * b).sum();
    (diff / norm).sqrt()
}

/// Checks every tensor of `path` against its dequantized copy and runs `linear` on the 2-D
/// ones named in `linear_on`.
fn check_model(path: &std::path::Path, linear_on: &[&str]) {
    let m = Model::open(path).unwrap();
    let before = rss_anon();
    let tensors: Vec<(String, Tensor)> = m
        .tensor_names()
        .into_iter()
        .map(|n| (n.to_string(), m.tensor(n).unwrap()))
        .collect();
    if let (Some(b), Some(a)) = (before, rss_anon()) {
        let file = std::fs::metadata(path).unwrap().len();
        let grown = a.saturating_sub(b);
        assert!(
            grown < file / 10 + (1 << 20),
            "{}: loading every tensor added {grown} bytes of anonymous memory for a {file}-byte file",
            path.display()
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (name, t) in &tensors {
        let desc = m.describe(name).unwrap();
        assert_eq!(t.dtype(), desc.kind.dtype(), "{name}");
        assert_eq!(t.shape(), &desc.shape[..], "{name}");
        assert!(t.cpu_storage().unwrap().is_shared(), "{name} was copied");
        let deq = m.dequantize(name).unwrap().to_vec_f64();
        assert_eq!(t.to_vec_f64(), deq, "{name}");
        if !linear_on.contains(&name.as_str()) {
            continue;
        }
        let (out, inp) = (desc.shape[0], desc.shape[1]);
        let x: Vec<f64> = (0..inp).map(|_| rng.random_range(-1.0..1.0)).collect();
        let xt = Tensor::from_f64(&x, &[1, inp], DType::F32).unwrap();
        let y = xt.linear(t, None).unwrap().to_vec_f64();
        let reference: Vec<f64> = (0..out)
            .map(|o| (0..inp).map(|k| deq[o * inp + k] * x[k]).sum())
            .collect();
        // Quantized weights at batch 1 see x as 8-bit blocks (see tl-tensor's runtime_linear).
        let tol = if desc.kind.is_quantized() { 2e-2 } else { 1e-5 };
        let err = rel_err(&y, &reference);
        assert!(err <= tol, "{name}: linear error {err}");
    }
}

#[test]
fn stories260k_tensors_are_zero_copy_views() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let path = stories();
    if !path.is_file() {
        println!("skipped: {} is absent", path.display());
        return;
    }
    check_model(
        &path,
        &[
            "blk.0.attn_q.weight",
            "blk.0.ffn_up.weight",
            "output.weight",
        ],
    );
}

#[test]
fn smollm2_q4_1_tensors_stay_packed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(path) = smollm2() else {
        println!("skipped: SmolLM2-135M-Instruct.Q4_1.gguf is not in ~/.cache/tensorlogic/models");
        return;
    };
    check_model(&path, &["blk.0.attn_q.weight", "blk.0.ffn_down.weight"]);
    let m = Model::open(&path).unwrap();
    let table = m.tensor("token_embd.weight").unwrap();
    let ids = Tensor::from_i64(vec![1, 2, 100], &[3]).unwrap();
    let rows = Tensor::embedding(&table, &ids).unwrap();
    let d = table.shape()[1];
    let deq = m.dequantize("token_embd.weight").unwrap().to_vec_f64();
    let got = rows.to_vec_f64();
    for (k, id) in [1usize, 2, 100].into_iter().enumerate() {
        assert_eq!(got[k * d..(k + 1) * d], deq[id * d..(id + 1) * d]);
    }
}
