//! `write_safetensors` / `read_safetensors` round trips, and the header layout the format
//! requires (u64 length, JSON, data aligned to 8 bytes), read back by `SafetensorsFile`.

use tl_models::SafetensorsFile;
use tl_models::safetensors::{read_safetensors, write_safetensors};
use tl_tensor::{DType, Tensor};

#[test]
fn every_dtype_round_trips() {
    let dir = std::env::temp_dir().join(format!("tl-models-st-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.safetensors");
    let values = [1.5, -2.25, 0.125, 3.0, -0.5, 7.0];
    let tensors: Vec<(String, Tensor)> = [DType::F32, DType::F16, DType::BF16, DType::I64]
        .iter()
        .map(|&d| {
            (
                format!("{d}"),
                Tensor::from_f64(&values, &[2, 3], d).unwrap(),
            )
        })
        .chain([(
            "mask".to_string(),
            Tensor::from_bool(vec![true, false, true], &[3]).unwrap(),
        )])
        .collect();
    write_safetensors(&path, &tensors, &[("format".into(), "pt".into())]).unwrap();

    let file = SafetensorsFile::open(&path).unwrap();
    assert_eq!(
        file.metadata().get("format").map(String::as_str),
        Some("pt")
    );
    let bytes = std::fs::read(&path).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!((8 + header) % 8, 0, "data starts 8-byte aligned");

    let back = read_safetensors(&path).unwrap();
    assert_eq!(back.len(), tensors.len());
    for ((name, t), (name2, u)) in tensors.iter().zip(&back) {
        assert_eq!(name, name2);
        assert_eq!(t.dtype(), u.dtype(), "{name}");
        assert_eq!(t.shape(), u.shape(), "{name}");
        assert_eq!(t.to_vec_f64(), u.to_vec_f64(), "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn quantized_tensors_are_refused_with_their_name() {
    let path =
        std::env::temp_dir().join(format!("tl-models-st-q-{}.safetensors", std::process::id()));
    let q = Tensor::from_f64(&[0.5; 32], &[1, 32], DType::F32)
        .unwrap()
        .cast(DType::Q8_0)
        .unwrap();
    let e = write_safetensors(&path, &[("w".into(), q)], &[]).unwrap_err();
    assert!(e.to_string().contains("cannot save a q8_0 tensor"), "{e}");
}
