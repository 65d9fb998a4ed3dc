//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use tl_models::{GgufEncoder, MetaValue};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn tinyllamas() -> PathBuf {
    // Relative to the workspace so the test works wherever the checkout sits beside shared/.
    let candidates = [
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/models/tinyllamas-stories-260k-f32.gguf"),
        PathBuf::from("/work/shared/models/tinyllamas-stories-260k-f32.gguf"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| candidates[1].clone())
}

pub fn read_f32_file(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Normal-ish random values (sum of uniforms), never all zero.
pub fn random_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| (0..4).map(|_| rng.random::<f32>() - 0.5).sum::<f32>() * 1.7)
        .collect()
}

/// ||out - ref|| / ||ref|| computed in f64.
pub fn rel_err(out: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(out.len(), reference.len());
    let num: f64 = out
        .iter()
        .zip(reference)
        .map(|(&a, &b)| (a as f64 - b).powi(2))
        .sum();
    let den: f64 = reference.iter().map(|b| b * b).sum();
    assert!(den > 0.0, "reference is all zeros");
    (num / den).sqrt()
}

/// A unique scratch file path for this test process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tl-models-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Builds GGUF bytes entry by entry with the crate's [`GgufEncoder`], so the tests can make
/// files that are broken in one precise way (raw type ids, offsets and name bytes; the byte
/// vectors are public so that a test can corrupt them).
pub struct GgufBuilder {
    pub version: u32,
    pub kv: Vec<u8>,
    pub n_kv: u64,
    pub infos: Vec<u8>,
    pub n_tensors: u64,
    pub data: Vec<u8>,
}

impl GgufBuilder {
    pub fn new(version: u32) -> GgufBuilder {
        GgufBuilder {
            version,
            kv: vec![],
            n_kv: 0,
            infos: vec![],
            n_tensors: 0,
            data: vec![],
        }
    }

    fn encoder(&self) -> GgufEncoder {
        GgufEncoder::new(self.version).unwrap()
    }

    /// A string-valued key whose value bytes are given raw (possibly not UTF-8).
    pub fn kv_string_bytes(mut self, key: &str, value: &[u8]) -> Self {
        let e = self.encoder();
        e.string(&mut self.kv, key.as_bytes());
        self.kv.extend_from_slice(&8u32.to_le_bytes());
        e.string(&mut self.kv, value);
        self.n_kv += 1;
        self
    }

    pub fn kv_u32(mut self, key: &str, value: u32) -> Self {
        let e = self.encoder();
        e.key_value(&mut self.kv, key.as_bytes(), &MetaValue::U32(value))
            .unwrap();
        self.n_kv += 1;
        self
    }

    /// A tensor info with the given ne-order dims, type id and data offset (data not added).
    pub fn tensor_info(mut self, name: &str, dims: &[u64], type_id: u32, offset: u64) -> Self {
        let e = self.encoder();
        e.tensor_info(&mut self.infos, name.as_bytes(), dims, type_id, offset);
        self.n_tensors += 1;
        self
    }

    pub fn data(mut self, bytes: &[u8]) -> Self {
        self.data.extend_from_slice(bytes);
        self
    }

    /// The file bytes, with the data section aligned to 32.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encoder().header(&mut out, self.n_tensors, self.n_kv);
        out.extend_from_slice(&self.kv);
        out.extend_from_slice(&self.infos);
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
        out.extend_from_slice(&self.data);
        out
    }

    pub fn write(&self, name: &str) -> PathBuf {
        let path = scratch(name);
        std::fs::write(&path, self.build()).unwrap();
        path
    }
}
