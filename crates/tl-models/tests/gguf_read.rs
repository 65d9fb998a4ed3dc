//! GGUF reading: the real v1 stories260K model, and v2/v3 files written by the `gguf` Python
//! package (tools/gguf_fixtures/make_fixtures.py) with every metadata type and tensor type.

mod common;

use common::*;
use tl_models::gguf::MetaValue;
use tl_models::quant::{GgmlType, dequantize_row, quantize_row};
use tl_models::{GgufFile, Model, ModelFormat};

#[test]
fn tinyllamas_v1_metadata_and_shapes() {
    let g = GgufFile::open(tinyllamas()).unwrap();
    assert_eq!(g.version(), 1);
    assert_eq!(g.architecture(), Some("llama"));
    assert_eq!(g.get_u64("llama.attention.head_count"), Some(8));
    assert_eq!(g.get_u64("llama.attention.head_count_kv"), Some(4));
    assert_eq!(g.get_u64("llama.embedding_length"), Some(64));
    assert_eq!(g.get_u64("llama.block_count"), Some(5));
    assert_eq!(g.get_u64("llama.context_length"), Some(512));
    let eps = g.get_f64("llama.attention.layer_norm_rms_epsilon").unwrap();
    assert!((eps - 1e-5).abs() < 1e-10, "eps {eps}");
    let tokens = g.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 512);
    assert_eq!(&tokens[..3], &["<unk>", "<s>", "</s>"]);
    assert_eq!(g.get_array("tokenizer.ggml.scores").unwrap().len(), 512);
    assert_eq!(g.get_u64("tokenizer.ggml.bos_token_id"), Some(1));

    assert_eq!(g.tensors().len(), 48);
    let q = g.tensor_info("blk.0.attn_q.weight").unwrap();
    assert_eq!(q.dims, vec![64, 64]);
    let k = g.tensor_info("blk.4.attn_k.weight").unwrap();
    assert_eq!(
        (k.kind, k.dims.clone(), k.shape()),
        (GgmlType::F32, vec![64, 32], vec![32, 64])
    );
    assert_eq!(
        g.tensor_info("blk.0.ffn_down.weight").unwrap().shape(),
        vec![64, 172]
    );
    assert_eq!(
        g.tensor_info("token_embd.weight").unwrap().shape(),
        vec![512, 64]
    );
    assert_eq!(g.tensor_bytes("output_norm.weight").unwrap().len(), 64 * 4);
    assert!(
        g.tensor_bytes("blk.9.attn_q.weight")
            .unwrap_err()
            .to_string()
            .contains("blk.9.attn_q.weight")
    );
}

#[test]
fn tinyllamas_through_model_api() {
    let m = Model::open(tinyllamas()).unwrap();
    assert_eq!(m.format(), ModelFormat::Gguf);
    let c = m.config();
    assert_eq!(c.architecture, "llama");
    assert_eq!(
        (c.n_heads, c.n_kv_heads, c.head_dim),
        (Some(8), Some(4), Some(8))
    );
    assert_eq!(
        (c.n_layers, c.d_model, c.ffn_dim),
        (Some(5), Some(64), Some(172))
    );
    assert_eq!(c.vocab_size, Some(512));
    assert_eq!(c.rope_theta, 10000.0);
    let t = m.tensor("blk.0.attn_norm.weight").unwrap();
    assert_eq!(t.shape(), &[64]);
    let raw = m.raw("blk.0.attn_norm.weight").unwrap();
    let from_bytes: Vec<f32> = raw
        .bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(t.to_vec_f32(), from_bytes);
    assert!(from_bytes.iter().any(|&v| v != 0.0));
    let emb = m.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.shape(), &[512, 64]);
}

fn check_test_metadata(g: &GgufFile) {
    use MetaValue::*;
    assert_eq!(g.metadata("test.u8"), Some(&U8(200)));
    assert_eq!(g.metadata("test.i8"), Some(&I8(-100)));
    assert_eq!(g.metadata("test.u16"), Some(&U16(60000)));
    assert_eq!(g.metadata("test.i16"), Some(&I16(-30000)));
    assert_eq!(g.metadata("test.u32"), Some(&U32(4_000_000_000)));
    assert_eq!(g.metadata("test.i32"), Some(&I32(-2_000_000_000)));
    assert_eq!(g.metadata("test.f32"), Some(&F32(1.5)));
    assert_eq!(g.metadata("test.bool_true"), Some(&Bool(true)));
    assert_eq!(g.get_bool("test.bool_false"), Some(false));
    assert_eq!(
        g.get_str("test.string"),
        Some("h\u{e9}llo w\u{f6}rld \u{2713}")
    );
    assert_eq!(g.metadata("test.u64"), Some(&U64((1 << 40) + 3)));
    assert_eq!(g.metadata("test.i64"), Some(&I64(-(1 << 40))));
    assert_eq!(g.metadata("test.f64"), Some(&F64(std::f64::consts::PI)));
    assert_eq!(
        g.metadata("test.array_i32"),
        Some(&Array(vec![I32(1), I32(-2), I32(3)]))
    );
    assert_eq!(
        g.metadata("test.array_f32"),
        Some(&Array(vec![F32(0.5), F32(0.25), F32(-1.0)]))
    );
    assert_eq!(
        g.get_str_array("test.array_str"),
        Some(vec!["a", "bc", "d\u{e9}f"])
    );
    assert_eq!(
        g.metadata("test.array_bool"),
        Some(&Array(vec![Bool(true), Bool(false), Bool(true)]))
    );
    assert_eq!(
        g.metadata("test.array_u8"),
        Some(&Array(vec![U8(1), U8(2), U8(255)]))
    );
    assert_eq!(
        g.metadata("test.array_i64"),
        Some(&Array(vec![I64(-(1 << 40)), I64(7)]))
    );
    assert_eq!(
        g.metadata("test.array_nested"),
        Some(&Array(vec![
            Array(vec![I32(1), I32(2)]),
            Array(vec![I32(3)])
        ]))
    );
    // Typed getters convert between integer widths and to floats.
    assert_eq!(g.get_i64("test.i16"), Some(-30000));
    assert_eq!(g.get_u64("test.i8"), None);
    assert_eq!(g.get_f64("test.u32"), Some(4e9));
    assert_eq!(g.get_u64("test.string"), None);
    assert_eq!(g.get_f64("llama.rope.freq_base"), Some(500000.0));
    assert_eq!(g.arch_metadata("attention.head_count_kv"), Some(&U32(2)));
}

const QUANT_TENSORS: [(&str, GgmlType, [usize; 2]); 9] = [
    ("t.f32", GgmlType::F32, [4, 64]),
    ("t.f16", GgmlType::F16, [4, 64]),
    ("t.bf16", GgmlType::BF16, [4, 64]),
    ("t.q8_0", GgmlType::Q8_0, [4, 64]),
    ("t.q4_0", GgmlType::Q4_0, [4, 64]),
    ("t.q4_1", GgmlType::Q4_1, [4, 64]),
    ("t.q4_k", GgmlType::Q4_K, [3, 512]),
    ("t.q5_k", GgmlType::Q5_K, [3, 512]),
    ("t.q6_k", GgmlType::Q6_K, [3, 512]),
];

#[test]
fn python_written_v3_and_v2_metadata() {
    for (file, version) in [("quant_v3.gguf", 3), ("quant_v2.gguf", 2)] {
        let g = GgufFile::open(fixture(file)).unwrap();
        assert_eq!(g.version(), version);
        assert_eq!(g.alignment(), 32);
        assert_eq!(g.data_offset() % 32, 0);
        check_test_metadata(&g);
        assert_eq!(
            g.get_str_array("tokenizer.ggml.tokens").unwrap()[4],
            "\u{2581}world"
        );
    }
}

#[test]
fn python_written_tensors_dequantize_like_gguf_numpy() {
    let g = GgufFile::open(fixture("quant_v3.gguf")).unwrap();
    for (name, kind, shape) in QUANT_TENSORS {
        let info = g.tensor_info(name).unwrap();
        assert_eq!(info.kind, kind, "{name}");
        assert_eq!(info.shape(), shape.to_vec(), "{name}");
        assert_eq!(info.dims, vec![shape[1], shape[0]], "{name}");
        let bytes = g.tensor_bytes(name).unwrap();
        assert_eq!(bytes.len(), kind.bytes_for(shape[0] * shape[1]).unwrap());
        let mut out = vec![0f32; shape[0] * shape[1]];
        dequantize_row(kind, bytes, &mut out).unwrap();
        let expected = read_f32_file(&fixture(&format!("quant_v3.{name}.f32")));
        assert_eq!(expected.len(), out.len());
        if kind.is_quantized() {
            // Same formula in the same f32 arithmetic as gguf's numpy code.
            let reference: Vec<f64> = expected.iter().map(|&v| v as f64).collect();
            let err = rel_err(&out, &reference);
            assert!(err < 1e-6, "{name}: relative error {err}");
            let worst = out
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst <= 1e-6, "{name}: worst abs diff {worst}");
        } else {
            assert_eq!(out, expected, "{name}");
        }
        assert!(out.iter().all(|v| v.is_finite()) && out.iter().any(|&v| v != 0.0));
    }
}

#[test]
fn quantize_row_matches_gguf_python_bytes() {
    let g = GgufFile::open(fixture("quant_v3.gguf")).unwrap();
    for (kind, packed, source) in [
        (GgmlType::Q8_0, "t.q8_0", "src.q8_0"),
        (GgmlType::Q4_0, "t.q4_0", "src.q4_0"),
    ] {
        let src_bytes = g.tensor_bytes(source).unwrap();
        let src: Vec<f32> = src_bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let ours = quantize_row(kind, &src).unwrap();
        assert_eq!(ours, g.tensor_bytes(packed).unwrap(), "{packed}");
    }
}

#[test]
fn model_api_float_tensors_and_explicit_dequantize() {
    let m = Model::open(fixture("quant_v3.gguf")).unwrap();
    let f16 = m.tensor("t.f16").unwrap();
    assert_eq!(f16.dtype(), tl_tensor::DType::F16);
    assert_eq!(f16.shape(), &[4, 64]);
    assert_eq!(
        f16.to_vec_f32(),
        read_f32_file(&fixture("quant_v3.t.f16.f32"))
    );
    let bf16 = m.tensor("t.bf16").unwrap();
    assert_eq!(bf16.dtype(), tl_tensor::DType::BF16);
    assert_eq!(
        bf16.to_vec_f32(),
        read_f32_file(&fixture("quant_v3.t.bf16.f32"))
    );
    let f32t = m.tensor("t.f32").unwrap();
    assert_eq!(
        f32t.to_vec_f32(),
        read_f32_file(&fixture("quant_v3.t.f32.f32"))
    );

    // Quantized tensors stay packed, viewing the file map; reading them dequantizes.
    let q4k = m.tensor("t.q4_k").unwrap();
    assert_eq!(
        (q4k.dtype(), q4k.shape()),
        (tl_tensor::DType::Q4_K, &[3usize, 512][..])
    );
    assert!(q4k.cpu_storage().unwrap().is_shared());
    let expected = read_f32_file(&fixture("quant_v3.t.q4_k.f32"));
    assert!(
        q4k.to_vec_f32()
            .iter()
            .zip(&expected)
            .all(|(a, b)| (a - b).abs() <= 1e-6)
    );
    assert!(f16.cpu_storage().unwrap().is_shared());
    let deq = m.dequantize("t.q6_k").unwrap();
    assert_eq!(deq.shape(), &[3, 512]);
    assert_eq!(deq.dtype(), tl_tensor::DType::F32);
    let expected = read_f32_file(&fixture("quant_v3.t.q6_k.f32"));
    let got = deq.to_vec_f32();
    assert!(
        got.iter()
            .zip(&expected)
            .all(|(a, b)| (a - b).abs() <= 1e-6)
    );
    let raw = m.raw("t.q4_0").unwrap();
    assert_eq!(
        (raw.kind, raw.shape.clone(), raw.bytes.len()),
        (GgmlType::Q4_0, vec![4, 64], 4 * 2 * 18)
    );
    let c = m.config();
    assert_eq!(
        (c.n_heads, c.n_kv_heads, c.head_dim, c.rope_theta),
        (Some(4), Some(2), Some(16), 500000.0)
    );
    assert_eq!(c.vocab_size, Some(5));
}

#[test]
fn custom_alignment() {
    let g = GgufFile::open(fixture("align64.gguf")).unwrap();
    assert_eq!(g.alignment(), 64);
    assert_eq!(g.data_offset() % 64, 0);
    for t in g.tensors() {
        assert_eq!(t.offset % 64, 0, "{}", t.name);
    }
    assert_eq!(g.tensor_info("b").unwrap().shape(), vec![2, 3]);
    assert_eq!(g.tensor_bytes("a").unwrap().len(), 20);
}

#[test]
fn model_open_detects_format_by_content() {
    // A GGUF file under a misleading name still opens as GGUF.
    let path = scratch("looks_like.safetensors");
    std::fs::copy(fixture("align64.gguf"), &path).unwrap();
    assert_eq!(Model::open(&path).unwrap().format(), ModelFormat::Gguf);
    let text = scratch("notes.txt");
    std::fs::write(&text, b"hello, this is not a model").unwrap();
    let err = Model::open(&text).unwrap_err().to_string();
    assert!(
        err.contains("notes.txt") && err.contains("unknown model format"),
        "{err}"
    );
}
