//! Safetensors Llama checkpoints (written by the `safetensors` Python package) seen through the
//! GGUF namespace: names, config keys, and q/k rows reordered for adjacent-pairs RoPE.

mod common;

use common::*;
use tl_models::gguf::MetaValue;
use tl_models::quant::GgmlType;
use tl_models::{Model, ModelFormat, SafetensorsFile, hf_to_gguf_name};

fn st_values(file: &SafetensorsFile, name: &str) -> Vec<f32> {
    let info = file.tensor_info(name).unwrap();
    let bytes = file.tensor_bytes(name).unwrap();
    match info.dtype {
        tl_models::safetensors::StDtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        tl_models::safetensors::StDtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => panic!("unexpected dtype {other:?}"),
    }
}

#[test]
fn names_map_to_gguf() {
    let cases = [
        ("model.embed_tokens.weight", "token_embd.weight"),
        (
            "model.layers.3.self_attn.q_proj.weight",
            "blk.3.attn_q.weight",
        ),
        (
            "model.layers.3.self_attn.k_proj.weight",
            "blk.3.attn_k.weight",
        ),
        (
            "model.layers.12.self_attn.v_proj.weight",
            "blk.12.attn_v.weight",
        ),
        (
            "model.layers.0.self_attn.o_proj.weight",
            "blk.0.attn_output.weight",
        ),
        (
            "model.layers.0.mlp.gate_proj.weight",
            "blk.0.ffn_gate.weight",
        ),
        ("model.layers.0.mlp.up_proj.weight", "blk.0.ffn_up.weight"),
        (
            "model.layers.0.mlp.down_proj.weight",
            "blk.0.ffn_down.weight",
        ),
        (
            "model.layers.21.input_layernorm.weight",
            "blk.21.attn_norm.weight",
        ),
        (
            "model.layers.21.post_attention_layernorm.weight",
            "blk.21.ffn_norm.weight",
        ),
        ("model.layers.1.self_attn.q_proj.bias", "blk.1.attn_q.bias"),
        ("model.norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    for (hf, gguf) in cases {
        assert_eq!(hf_to_gguf_name(hf).as_deref(), Some(gguf), "{hf}");
    }
    for unmapped in [
        "model.layers.x.mlp.up_proj.weight",
        "model.layers.0.self_attn.rotary_emb.inv_freq",
        "foo",
    ] {
        assert_eq!(hf_to_gguf_name(unmapped), None, "{unmapped}");
    }
}

#[test]
fn config_json_under_gguf_keys() {
    let m = Model::open(fixture("st_llama")).unwrap();
    assert_eq!(m.format(), ModelFormat::Safetensors);
    assert_eq!(
        m.metadata("general.architecture")
            .and_then(MetaValue::as_str),
        Some("llama")
    );
    assert_eq!(
        m.metadata("llama.embedding_length"),
        Some(&MetaValue::U32(16))
    );
    assert_eq!(
        m.metadata("llama.attention.head_count"),
        Some(&MetaValue::U32(4))
    );
    assert_eq!(
        m.metadata("llama.attention.head_count_kv"),
        Some(&MetaValue::U32(2))
    );
    assert_eq!(
        m.metadata("tokenizer.ggml.eos_token_id"),
        Some(&MetaValue::U32(2))
    );
    let c = m.config();
    assert_eq!(
        (c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.head_dim),
        (Some(1), Some(16), Some(4), Some(2), Some(4))
    );
    assert_eq!(
        (c.ffn_dim, c.vocab_size, c.context_length),
        (Some(24), Some(32), Some(256))
    );
    assert_eq!(c.rope_theta, 10000.0);
    assert!((c.rms_norm_eps.unwrap() - 1e-6).abs() < 1e-12);
    // Opening the file itself finds config.json beside it.
    let by_file = Model::open(fixture("st_llama/model.safetensors")).unwrap();
    assert_eq!(by_file.config(), c);
}

#[test]
fn tensors_mapped_and_plain_ones_unchanged() {
    let m = Model::open(fixture("st_llama")).unwrap();
    let st = SafetensorsFile::open(fixture("st_llama/model.safetensors")).unwrap();
    let mut names = m.tensor_names();
    names.sort();
    let mut expected: Vec<String> = st
        .tensors()
        .iter()
        .map(|t| hf_to_gguf_name(&t.name).unwrap())
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    for (gguf, hf) in [
        ("token_embd.weight", "model.embed_tokens.weight"),
        (
            "blk.0.attn_v.weight",
            "model.layers.0.self_attn.v_proj.weight",
        ),
        ("blk.0.ffn_up.weight", "model.layers.0.mlp.up_proj.weight"),
        ("output.weight", "lm_head.weight"),
    ] {
        let t = m.tensor(gguf).unwrap();
        assert_eq!(
            t.shape(),
            st.tensor_info(hf).unwrap().shape.as_slice(),
            "{gguf}"
        );
        assert_eq!(t.to_vec_f32(), st_values(&st, hf), "{gguf}");
    }
    assert_eq!(
        m.describe("blk.0.attn_k.weight").unwrap().kind,
        GgmlType::F16
    );
    assert_eq!(
        m.tensor("blk.0.attn_k.weight").unwrap().dtype(),
        tl_tensor::DType::F16
    );
    let err = m.tensor("blk.7.attn_q.weight").unwrap_err().to_string();
    assert!(
        err.contains("blk.7.attn_q.weight") && err.contains("no such tensor"),
        "{err}"
    );
}

/// Rotate-half RoPE as Hugging Face applies it to one head (f64).
fn rope_half(v: &[f64], pos: f64, theta: f64) -> Vec<f64> {
    let d = v.len();
    let mut out = v.to_vec();
    for i in 0..d / 2 {
        let a = pos * theta.powf(-2.0 * i as f64 / d as f64);
        let (x, y) = (v[i], v[i + d / 2]);
        out[i] = x * a.cos() - y * a.sin();
        out[i + d / 2] = y * a.cos() + x * a.sin();
    }
    out
}

/// Adjacent-pairs RoPE as GGUF models expect it (f64).
fn rope_pairs(v: &[f64], pos: f64, theta: f64) -> Vec<f64> {
    let d = v.len();
    let mut out = v.to_vec();
    for i in 0..d / 2 {
        let a = pos * theta.powf(-2.0 * i as f64 / d as f64);
        let (x, y) = (v[2 * i], v[2 * i + 1]);
        out[2 * i] = x * a.cos() - y * a.sin();
        out[2 * i + 1] = y * a.cos() + x * a.sin();
    }
    out
}

#[test]
fn q_and_k_rows_permuted_for_adjacent_pair_rope() {
    let m = Model::open(fixture("st_llama")).unwrap();
    let st = SafetensorsFile::open(fixture("st_llama/model.safetensors")).unwrap();
    let d_model = 16;
    for (gguf, hf, heads) in [
        (
            "blk.0.attn_q.weight",
            "model.layers.0.self_attn.q_proj.weight",
            4usize,
        ),
        (
            "blk.0.attn_k.weight",
            "model.layers.0.self_attn.k_proj.weight",
            2usize,
        ),
    ] {
        let original = st_values(&st, hf);
        let permuted = m.tensor(gguf).unwrap().to_vec_f32();
        let rows = original.len() / d_model;
        let hd = rows / heads;
        // llama.cpp's converter: view rows as [heads, 2, hd/2], swap the last two axes.
        for h in 0..heads {
            for t in 0..2 {
                for j in 0..hd / 2 {
                    let new_row = h * hd + 2 * j + t;
                    let old_row = h * hd + t * (hd / 2) + j;
                    assert_eq!(
                        &permuted[new_row * d_model..(new_row + 1) * d_model],
                        &original[old_row * d_model..(old_row + 1) * d_model],
                        "{gguf} row {new_row}"
                    );
                }
            }
        }
        // What the permutation is for: HF weights with rotate-half RoPE and the permuted
        // weights with adjacent-pair RoPE give the same attention scores q.k for any input.
        let mut rng = rng(5);
        let x: Vec<f64> = random_vec(&mut rng, d_model)
            .into_iter()
            .map(f64::from)
            .collect();
        let y: Vec<f64> = random_vec(&mut rng, d_model)
            .into_iter()
            .map(f64::from)
            .collect();
        let project = |w: &[f32], v: &[f64]| -> Vec<f64> {
            (0..rows)
                .map(|r| {
                    w[r * d_model..(r + 1) * d_model]
                        .iter()
                        .zip(v)
                        .map(|(&a, b)| a as f64 * b)
                        .sum()
                })
                .collect()
        };
        let (hf_x, hf_y, gg_x, gg_y) = (
            project(&original, &x),
            project(&original, &y),
            project(&permuted, &x),
            project(&permuted, &y),
        );
        for h in 0..heads {
            let head = |v: &[f64]| v[h * hd..(h + 1) * hd].to_vec();
            let a = rope_half(&head(&hf_x), 3.0, 10000.0);
            let b = rope_half(&head(&hf_y), 7.0, 10000.0);
            let c = rope_pairs(&head(&gg_x), 3.0, 10000.0);
            let d = rope_pairs(&head(&gg_y), 7.0, 10000.0);
            let s_hf: f64 = a.iter().zip(&b).map(|(p, q)| p * q).sum();
            let s_gg: f64 = c.iter().zip(&d).map(|(p, q)| p * q).sum();
            assert!(
                (s_hf - s_gg).abs() <= 1e-9 * s_hf.abs().max(1.0),
                "{gguf} head {h}: {s_hf} vs {s_gg}"
            );
        }
    }
}

/// transformers 5 writes RoPE's base under `rope_parameters`; earlier versions at the top.
#[test]
fn rope_theta_is_read_from_rope_parameters_too() {
    let dir = std::env::temp_dir().join(format!("tl-rope-theta-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    for (json, want) in [
        (
            r#"{"hidden_size": 64, "rope_parameters": {"rope_theta": 500000.0}}"#,
            500000.0,
        ),
        (r#"{"hidden_size": 64, "rope_theta": 250000.0}"#, 250000.0),
        (r#"{"hidden_size": 64}"#, 10000.0),
    ] {
        std::fs::write(&path, json).unwrap();
        let meta = tl_models::safetensors::read_hf_config(&path).unwrap();
        let theta = meta
            .iter()
            .find(|(k, _)| k.ends_with("rope.freq_base"))
            .map(|(_, v)| v.clone());
        assert_eq!(theta, Some(MetaValue::F32(want)), "{json}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
