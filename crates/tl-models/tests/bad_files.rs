//! Broken files give an `Err` naming the file and the problem, never a panic.

mod common;

use common::*;
use tl_models::{GgufFile, Model, SafetensorsFile};

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Opens `path` as GGUF and through `Model`; both must fail with messages containing `file`
/// and every string of `words`.
fn expect_gguf_error(path: &std::path::Path, words: &[&str]) -> String {
    let file = path.file_name().unwrap().to_str().unwrap();
    let direct = GgufFile::open(path).unwrap_err().to_string();
    let via_model = Model::open(path).unwrap_err().to_string();
    for msg in [&direct, &via_model] {
        assert!(msg.contains(file), "message does not name the file: {msg}");
        for w in words {
            assert!(msg.contains(w), "message lacks {w:?}: {msg}");
        }
    }
    direct
}

#[test]
fn hand_built_good_files_read_in_every_version() {
    for version in [1, 2, 3] {
        let values = [1.5f32, -2.0, 3.25, 0.5];
        let path = GgufBuilder::new(version)
            .kv_u32("general.alignment", 32)
            .kv_string_bytes("general.architecture", b"llama")
            .tensor_info("w", &[2, 2], 0, 0)
            .data(&f32_bytes(&values))
            .write(&format!("good_v{version}.gguf"));
        let g = GgufFile::open(&path).unwrap();
        assert_eq!(g.version(), version);
        assert_eq!(g.architecture(), Some("llama"));
        assert_eq!(g.tensor_bytes("w").unwrap(), f32_bytes(&values).as_slice());
        let m = Model::open(&path).unwrap();
        assert_eq!(m.tensor("w").unwrap().to_vec_f32(), values.to_vec());
    }
}

#[test]
fn truncated_files() {
    let good = std::fs::read(fixture("quant_v3.gguf")).unwrap();
    assert!(GgufFile::open(fixture("quant_v3.gguf")).is_ok());
    let g = GgufFile::open(fixture("quant_v3.gguf")).unwrap();
    let data_offset = g.data_offset() as usize;
    let last = g.tensors().iter().max_by_key(|t| t.offset).unwrap();
    // The writer pads after the last tensor; cutting into that padding is harmless.
    let data_end = data_offset + last.offset as usize + last.n_bytes;
    for cut in [
        0,
        3,
        7,
        12,
        30,
        100,
        400,
        data_offset - 5,
        data_offset + 10,
        data_end - 1,
    ] {
        let path = scratch(&format!("truncated_{cut}.gguf"));
        std::fs::write(&path, &good[..cut]).unwrap();
        let msg = GgufFile::open(&path).unwrap_err().to_string();
        assert!(msg.contains(&format!("truncated_{cut}.gguf")), "{msg}");
        assert!(
            msg.contains("truncated") || msg.contains("past the end") || msg.contains("too short"),
            "cut at {cut}: {msg}"
        );
        assert!(Model::open(&path).is_err());
    }
    // A cut inside the tensor data names the tensor that no longer fits.
    let path = scratch("truncated_data.gguf");
    std::fs::write(&path, &good[..data_end - 1]).unwrap();
    expect_gguf_error(&path, &[&last.name, "runs past the end of the file"]);
}

#[test]
fn wrong_magic() {
    let mut bytes = std::fs::read(fixture("quant_v3.gguf")).unwrap();
    bytes[3] = b'X';
    let path = scratch("wrong_magic.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let msg = GgufFile::open(&path).unwrap_err().to_string();
    assert!(
        msg.contains("wrong_magic.gguf") && msg.contains("not a GGUF file"),
        "{msg}"
    );
    let msg = Model::open(&path).unwrap_err().to_string();
    assert!(
        msg.contains("wrong_magic.gguf") && msg.contains("unknown model format"),
        "{msg}"
    );
}

#[test]
fn unsupported_version() {
    let mut b = GgufBuilder::new(3).build();
    b[4] = 9;
    let path = scratch("version9.gguf");
    std::fs::write(&path, &b).unwrap();
    expect_gguf_error(&path, &["unsupported GGUF version 9"]);
}

#[test]
fn unknown_and_unsupported_tensor_types() {
    let path = GgufBuilder::new(3)
        .tensor_info("blk.0.weird", &[32], 99, 0)
        .data(&[0u8; 128])
        .write("unknown_type.gguf");
    expect_gguf_error(&path, &["blk.0.weird", "unknown tensor type id 99"]);
    let path = GgufBuilder::new(3)
        .tensor_info("blk.0.q5", &[32], 6, 0)
        .data(&[0u8; 128])
        .write("q5_0.gguf");
    expect_gguf_error(&path, &["blk.0.q5", "Q5_0", "not supported"]);
}

#[test]
fn tensor_data_beyond_the_end() {
    let path = GgufBuilder::new(3)
        .tensor_info("big", &[64, 4], 0, 0)
        .data(&f32_bytes(&[1.0; 10]))
        .write("beyond_end.gguf");
    expect_gguf_error(&path, &["big", "runs past the end of the file"]);
    // An offset far beyond the file, including one that would overflow.
    let path = GgufBuilder::new(3)
        .tensor_info("far", &[4], 0, u64::MAX - 31)
        .data(&[0u8; 16])
        .write("far.gguf");
    expect_gguf_error(&path, &["far", "runs past the end"]);
}

#[test]
fn shape_disagreeing_with_data_size() {
    // `a` claims 16 f32 values (64 bytes) but `b`'s data starts 32 bytes after it.
    let path = GgufBuilder::new(3)
        .tensor_info("a", &[16], 0, 0)
        .tensor_info("b", &[8], 0, 32)
        .data(&f32_bytes(&[1.0; 24]))
        .write("shape_overlap.gguf");
    expect_gguf_error(&path, &["'a'", "[16]", "64 bytes", "overlap", "'b'"]);
    // A quantized row that is not a whole number of blocks.
    let path = GgufBuilder::new(3)
        .tensor_info("q", &[33, 2], 8, 0)
        .data(&[0u8; 256])
        .write("partial_block.gguf");
    expect_gguf_error(&path, &["'q'", "not a multiple of the Q8_0 block size 32"]);
    // A misaligned offset.
    let path = GgufBuilder::new(3)
        .tensor_info("m", &[4], 0, 8)
        .data(&[0u8; 64])
        .write("misaligned.gguf");
    expect_gguf_error(&path, &["'m'", "not a multiple of the alignment 32"]);
}

#[test]
fn non_utf8_strings() {
    let path = GgufBuilder::new(3)
        .kv_string_bytes("general.name", b"bad \xff\xfe name")
        .write("bad_utf8.gguf");
    expect_gguf_error(&path, &["general.name", "not valid UTF-8"]);
    let path = GgufBuilder::new(2)
        .tensor_info("na\u{e9}me", &[4], 0, 0)
        .data(&[0u8; 16])
        .build();
    // Corrupt the tensor name's second byte of 'é' (0xC3 0xA9) into an invalid continuation.
    let mut bytes = path.clone();
    let at = bytes.windows(2).position(|w| w == [0xC3, 0xA9]).unwrap();
    bytes[at + 1] = 0x41;
    let p = scratch("bad_utf8_tensor.gguf");
    std::fs::write(&p, &bytes).unwrap();
    expect_gguf_error(&p, &["tensor #0", "not valid UTF-8"]);
}

#[test]
fn bad_metadata_values() {
    // A bool stored as 2.
    let mut b = GgufBuilder::new(3).kv_u32("flag", 0);
    let pos = b.kv.len() - 8;
    b.kv[pos..pos + 4].copy_from_slice(&7u32.to_le_bytes());
    b.kv.truncate(pos + 4);
    b.kv.push(2);
    expect_gguf_error(&b.write("bool2.gguf"), &["'flag'", "bool stored as 2"]);
    // An unknown value type.
    let mut b = GgufBuilder::new(3).kv_u32("odd", 0);
    let pos = b.kv.len() - 8;
    b.kv[pos..pos + 4].copy_from_slice(&77u32.to_le_bytes());
    expect_gguf_error(
        &b.write("vtype77.gguf"),
        &["'odd'", "unknown metadata value type 77"],
    );
    // An array claiming 2^40 elements must fail cleanly, not try to allocate them.
    let mut b = GgufBuilder::new(3).kv_u32("arr", 0);
    let pos = b.kv.len() - 8;
    b.kv.truncate(pos);
    b.kv.extend_from_slice(&9u32.to_le_bytes());
    b.kv.extend_from_slice(&4u32.to_le_bytes());
    b.kv.extend_from_slice(&(1u64 << 40).to_le_bytes());
    expect_gguf_error(&b.write("huge_array.gguf"), &["'arr'", "truncated"]);
    // A bad alignment.
    let path = GgufBuilder::new(3)
        .kv_u32("general.alignment", 48)
        .write("align48.gguf");
    expect_gguf_error(&path, &["general.alignment", "power of two"]);
}

fn write_safetensors(name: &str, header: &str, data: &[u8]) -> std::path::PathBuf {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    let path = scratch(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn bad_safetensors_files() {
    let data = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);
    let good = write_safetensors(
        "st_good.safetensors",
        r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
        &data,
    );
    assert_eq!(
        Model::open(&good)
            .unwrap()
            .tensor("w")
            .unwrap()
            .to_vec_f32(),
        vec![1.0, 2.0, 3.0, 4.0]
    );

    let cases = [
        (
            "st_shape.safetensors",
            r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}"#,
            "needs 24 bytes",
        ),
        (
            "st_beyond.safetensors",
            r#"{"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]}}"#,
            "runs past the end",
        ),
        (
            "st_dtype.safetensors",
            r#"{"w":{"dtype":"F7","shape":[4],"data_offsets":[0,16]}}"#,
            "unknown dtype 'F7'",
        ),
        (
            "st_json.safetensors",
            r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]"#,
            "not valid JSON",
        ),
    ];
    for (name, header, words) in cases {
        let path = write_safetensors(name, header, &data);
        let msg = SafetensorsFile::open(&path).unwrap_err().to_string();
        assert!(msg.contains(name) && msg.contains(words), "{msg}");
    }
    // A header length larger than the file.
    let mut bytes = 1_000_000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let path = scratch("st_header_len.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let msg = SafetensorsFile::open(&path).unwrap_err().to_string();
    assert!(
        msg.contains("st_header_len.safetensors") && msg.contains("header length"),
        "{msg}"
    );
    // Integer tensors are listed but refused as float tensors.
    let path = write_safetensors(
        "st_i64.safetensors",
        r#"{"ids":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#,
        &data,
    );
    let msg = Model::open(&path)
        .unwrap()
        .tensor("ids")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("ids") && msg.contains("not supported"),
        "{msg}"
    );
}
