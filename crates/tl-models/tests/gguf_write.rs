//! The GGUF writer and the random Llama generator: what is written reads back identically with
//! the crate's reader, and the generated model loads as a Llama with a working vocabulary.

mod common;

use common::*;
use tl_models::gguf_write::GgufWriter;
use tl_models::synthetic::{LlamaShape, random_llama_file_size, write_random_llama};
use tl_models::{GgmlType, GgufFile, MetaValue, Model, Tokenizer, dequantize_row, quantize_row};

fn every_metadata_type() -> Vec<(&'static str, MetaValue)> {
    vec![
        ("t.u8", MetaValue::U8(200)),
        ("t.i8", MetaValue::I8(-100)),
        ("t.u16", MetaValue::U16(60000)),
        ("t.i16", MetaValue::I16(-30000)),
        ("t.u32", MetaValue::U32(4_000_000_000)),
        ("t.i32", MetaValue::I32(-2_000_000_000)),
        ("t.u64", MetaValue::U64(1 << 50)),
        ("t.i64", MetaValue::I64(-(1 << 50))),
        ("t.f32", MetaValue::F32(-1.25e-7)),
        ("t.f64", MetaValue::F64(std::f64::consts::PI)),
        ("t.bool", MetaValue::Bool(true)),
        ("t.string", MetaValue::String("héllo ▁world".into())),
        (
            "t.strings",
            MetaValue::Array(vec![
                MetaValue::String("a".into()),
                MetaValue::String("".into()),
            ]),
        ),
        (
            "t.nested",
            MetaValue::Array(vec![
                MetaValue::Array(vec![MetaValue::I32(1), MetaValue::I32(-2)]),
                MetaValue::Array(vec![]),
            ]),
        ),
    ]
}

#[test]
fn written_files_read_back_identically() {
    let mut r = rng(21);
    let kinds = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
    ];
    for (version, alignment) in [(3, 32), (3, 64), (2, 32), (1, 32)] {
        let mut w = GgufWriter::with_version(version).unwrap();
        w.set_alignment(alignment).unwrap();
        for (k, v) in every_metadata_type() {
            w.metadata(k, v);
        }
        // Odd row counts so that tensor sizes are not multiples of the alignment.
        let mut expected = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let shape = [3 + i, 64];
            let values = random_vec(&mut r, shape[0] * shape[1]);
            let bytes = quantize_row(*kind, &values).unwrap();
            let name = format!("blk.{i}.{}", kind.name());
            w.tensor(&name, &shape, *kind).unwrap();
            expected.push((name, shape, *kind, values, bytes));
        }
        let path = scratch(&format!("written_v{version}_a{alignment}.gguf"));
        let mut data = w.create(&path).unwrap();
        for (_, _, _, _, bytes) in &expected {
            data.write_tensor(bytes).unwrap();
        }
        data.finish().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            w.file_size().unwrap()
        );

        let g = GgufFile::open(&path).unwrap();
        assert_eq!(g.version(), version);
        assert_eq!(g.alignment(), alignment as u64);
        for (k, v) in every_metadata_type() {
            assert_eq!(g.metadata(k), Some(&v), "v{version}: {k}");
        }
        let m = Model::open(&path).unwrap();
        for (name, shape, kind, values, bytes) in &expected {
            let info = g.tensor_info(name).unwrap();
            assert_eq!((info.kind, info.shape()), (*kind, shape.to_vec()), "{name}");
            assert_eq!(g.tensor_bytes(name).unwrap(), bytes.as_slice(), "{name}");
            // The values through the model API, against the f64 originals: exact for F32,
            // within the format's rounding for the others.
            let back = m.dequantize_to_vec(name).unwrap();
            let reference: Vec<f64> = values.iter().map(|&v| v as f64).collect();
            let tol = match kind {
                GgmlType::F32 => 0.0,
                GgmlType::F16 => 1e-3,
                GgmlType::BF16 => 4e-3,
                GgmlType::Q8_0 => 1e-2,
                _ => 0.15,
            };
            let e = rel_err(&back, &reference);
            assert!(e <= tol, "v{version} {name}: relative error {e} > {tol}");
        }
    }
}

#[test]
fn writer_refuses_inconsistent_input() {
    let mut w = GgufWriter::new();
    let e = w.tensor("q", &[2, 48], GgmlType::Q8_0).unwrap_err();
    assert!(e.to_string().contains("whole number of Q8_0 blocks"), "{e}");
    w.tensor("a", &[4], GgmlType::F32).unwrap();
    let e = w.tensor("a", &[4], GgmlType::F32).unwrap_err();
    assert!(e.to_string().contains("declared twice"), "{e}");
    assert!(w.set_alignment(48).is_err());
    assert!(GgufWriter::with_version(4).is_err());
    w.metadata(
        "mixed",
        MetaValue::Array(vec![MetaValue::U8(1), MetaValue::F32(2.0)]),
    );
    let e = w.header_bytes().unwrap_err().to_string();
    assert!(e.contains("'mixed'") && e.contains("one type"), "{e}");

    let mut w = GgufWriter::new();
    w.tensor("a", &[4], GgmlType::F32).unwrap();
    w.tensor("b", &[4], GgmlType::F32).unwrap();
    let path = scratch("inconsistent.gguf");
    let mut data = w.create(&path).unwrap();
    let e = data.write_tensor(&[0u8; 12]).unwrap_err().to_string();
    assert!(e.contains("'a'") && e.contains("16 bytes, 12 given"), "{e}");
    data.write_tensor(&[0u8; 16]).unwrap();
    let e = data.finish().unwrap_err().to_string();
    assert!(e.contains("'b'") && e.contains("not written"), "{e}");
}

/// GGML's reference quantizers written out plainly, one block at a time.
fn naive_q8_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for blk in x.chunks(32) {
        let mut amax = 0f32;
        for &v in blk {
            if v.abs() > amax {
                amax = v.abs();
            }
        }
        let d = amax / 127.0;
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        for &v in blk {
            let q = if d == 0.0 { 0.0 } else { v * (1.0 / d) };
            // C roundf: halves away from zero.
            let r = q.signum() * (q.abs() + 0.5).floor();
            out.push(r as i8 as u8);
        }
    }
    out
}

fn naive_q4_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for blk in x.chunks(32) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in blk {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d == 0.0 { 0.0 } else { 1.0 / d };
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        let q = |v: f32| ((v * id + 8.5) as i32).min(15) as u8;
        for j in 0..16 {
            out.push(q(blk[j]) | (q(blk[j + 16]) << 4));
        }
    }
    out
}

#[test]
fn quantizers_match_a_naive_reference_and_round_trip_within_a_step() {
    let mut r = rng(5);
    // Blocks of very different scales, one of zeros, one with a tie in magnitude.
    let mut x = random_vec(&mut r, 32 * 16);
    x[32..64].iter_mut().for_each(|v| *v *= 1e-4);
    x[64..96].iter_mut().for_each(|v| *v = 0.0);
    x[96] = 3.0;
    x[97] = -3.0;
    assert_eq!(
        quantize_row(GgmlType::Q8_0, &x).unwrap(),
        naive_q8_0(&x),
        "Q8_0"
    );
    assert_eq!(
        quantize_row(GgmlType::Q4_0, &x).unwrap(),
        naive_q4_0(&x),
        "Q4_0"
    );
    for (kind, steps) in [(GgmlType::Q8_0, 0.5), (GgmlType::Q4_0, 1.0)] {
        let q = quantize_row(kind, &x).unwrap();
        let mut back = vec![0f32; x.len()];
        dequantize_row(kind, &q, &mut back).unwrap();
        for (xs, ys) in x.chunks(32).zip(back.chunks(32)) {
            let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
            let step = if kind == GgmlType::Q8_0 {
                amax / 127.0
            } else {
                amax / 8.0
            };
            // Half a step of rounding (a whole one for Q4_0, whose top value is clamped), plus
            // the f16 rounding of the scale times the largest code (2^-11 relative, at least
            // 2^-25 absolute where the scale is an f16 subnormal).
            let qmax = if kind == GgmlType::Q8_0 { 127.0 } else { 8.0 };
            let bound = steps * step + amax * 1e-3 + qmax * 2f32.powi(-25);
            for (a, b) in xs.iter().zip(ys) {
                assert!((a - b).abs() <= bound, "{}: {a} vs {b}", kind.name());
            }
        }
    }
}

#[test]
fn random_llama_loads_with_its_shape_and_vocabulary() {
    let shape = LlamaShape::tiny();
    for kind in [GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0] {
        let path = scratch(&format!("random_llama_{}.gguf", kind.name()));
        let mut calls = Vec::new();
        write_random_llama(&path, &shape, kind, 7, &mut |done, total| {
            calls.push((done, total))
        })
        .unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(size, random_llama_file_size(&shape, kind).unwrap());
        assert_eq!(calls.last(), Some(&(size, size)));
        assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));

        let m = Model::open(&path).unwrap();
        let c = m.config();
        assert_eq!(c.n_layers, Some(shape.n_layers));
        assert_eq!(c.d_model, Some(shape.d_model));
        assert_eq!(c.n_heads, Some(shape.n_heads));
        assert_eq!(c.n_kv_heads, Some(shape.n_kv_heads));
        assert_eq!(c.head_dim, Some(shape.head_dim()));
        assert_eq!(c.ffn_dim, Some(shape.ffn_dim));
        assert_eq!(c.vocab_size, Some(shape.vocab_size));
        assert_eq!(c.rms_norm_eps, Some(1e-5f32 as f64));
        assert_eq!(m.tensor_names().len(), shape.tensors().len());
        // Matrices hold N(0, 0.02^2) values (up to quantization), norms 1 + N(0, 0.1^2).
        let w = m.dequantize_to_vec("blk.1.ffn_down.weight").unwrap();
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let std = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(
            mean.abs() < 2e-3 && (std - 0.02).abs() < 2e-3,
            "{mean} {std}"
        );
        let norm = m.dequantize_to_vec("output_norm.weight").unwrap();
        let nmean = norm.iter().map(|&v| v as f64).sum::<f64>() / norm.len() as f64;
        assert!((nmean - 1.0).abs() < 0.05, "{nmean}");
        // Every text encodes (through the byte tokens) and decodes back.
        let tok = Tokenizer::from_gguf(&m).unwrap();
        let text = "Hello, wörld! 123";
        let ids = tok.encode(text, true).unwrap();
        assert_eq!(ids[0], 1);
        assert_eq!(tok.decode(&ids[1..]).unwrap(), text);
    }
    // The same seed writes the same file.
    let a = scratch("random_llama_a.gguf");
    let b = scratch("random_llama_b.gguf");
    write_random_llama(&a, &shape, GgmlType::Q4_0, 3, &mut |_, _| {}).unwrap();
    write_random_llama(&b, &shape, GgmlType::Q4_0, 3, &mut |_, _| {}).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let bad = LlamaShape {
        n_kv_heads: 3,
        ..LlamaShape::tiny()
    };
    let e = write_random_llama(&a, &bad, GgmlType::F16, 1, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("KV-head groups"), "{e}");
}
