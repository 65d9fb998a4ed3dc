//! Host buffers shared with a file map (zero-copy tensors, copy-on-write), quantized tensors
//! (views, casts, embedding, printing, refused ops) and in-place slice writes.

use half::f16;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use tl_tensor::quant::{GgmlType, dequantize_row, quantize_row};
use tl_tensor::{CpuStorage, DType, HostBuf, SharedBytes, Tensor, UnaryOp};

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn values(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let m: f32 = rng.random_range(0.1..2.0);
            if rng.random::<bool>() { m } else { -m }
        })
        .collect()
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A file holding `bytes`, memory-mapped; the file is removed when the test ends.
fn mapped(name: &str, bytes: &[u8]) -> SharedBytes {
    let path = std::env::temp_dir().join(format!("tl_tensor_{}_{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    // SAFETY: the file is private to this test and not modified while mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    std::fs::remove_file(&path).unwrap();
    Arc::new(map)
}

#[test]
fn mapped_tensors_equal_copied_ones_without_copying() {
    let mut r = rng(1);
    let v = values(&mut r, 6 * 5);
    // 16 bytes of header, then the f32 data: aligned for f32.
    let mut bytes = vec![7u8; 16];
    bytes.extend(le_bytes(&v));
    let map = mapped("aligned", &bytes);
    let buf = HostBuf::<f32>::from_shared(map.clone(), 16, v.len()).unwrap();
    assert!(buf.is_shared());
    let t = Tensor::from_cpu_storage(CpuStorage::F32(buf), &[6, 5]).unwrap();
    let copied = Tensor::from_f32(v.clone(), &[6, 5]).unwrap();
    assert_eq!(t.to_vec_f64(), copied.to_vec_f64());
    assert!(t.cpu_storage().unwrap().is_shared());
    // Ops on mapped tensors read the map like any host buffer.
    let a = t.unary(UnaryOp::Exp).unwrap().to_vec_f64();
    assert_eq!(a, copied.unary(UnaryOp::Exp).unwrap().to_vec_f64());
    // A misaligned start is decoded into an owned copy with the same values.
    let mut odd = vec![1u8; 3];
    odd.extend(le_bytes(&v));
    let map = mapped("misaligned", &odd);
    let buf = HostBuf::<f32>::from_shared(map, 3, v.len()).unwrap();
    assert!(!buf.is_shared());
    assert_eq!(&buf[..], &v[..]);
    // f16 values from shared bytes.
    let h: Vec<u8> = v
        .iter()
        .flat_map(|&x| f16::from_f32(x).to_le_bytes())
        .collect();
    let owner: SharedBytes = Arc::new(h);
    let buf = HostBuf::<f16>::from_shared(owner, 0, v.len()).unwrap();
    let t = Tensor::from_cpu_storage(CpuStorage::F16(buf), &[30]).unwrap();
    let want: Vec<f64> = v.iter().map(|&x| f16::from_f32(x).to_f64()).collect();
    assert_eq!(t.to_vec_f64(), want);
}

#[test]
fn shared_bytes_out_of_range_is_an_error() {
    let owner: SharedBytes = Arc::new(vec![0u8; 40]);
    let e = HostBuf::<f32>::from_shared(owner.clone(), 8, 9)
        .unwrap_err()
        .to_string();
    assert!(e.contains("do not fit in 40 bytes"), "{e}");
    assert!(HostBuf::<f32>::from_shared(owner, usize::MAX, 2).is_err());
}

#[test]
fn writing_to_a_mapped_tensor_copies_first() {
    let mut r = rng(2);
    let v = values(&mut r, 4 * 8);
    let map = mapped("cow", &le_bytes(&v));
    let make = || {
        let buf = HostBuf::<f32>::from_shared(map.clone(), 0, v.len()).unwrap();
        Tensor::from_cpu_storage(CpuStorage::F32(buf), &[4, 8]).unwrap()
    };
    let other = make();
    let mut t = make();
    let src = Tensor::from_f32(vec![9.0; 8], &[1, 8]).unwrap();
    t.write_slice_in_place(0, 2, &src).unwrap();
    let mut want: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    want[16..24].iter_mut().for_each(|x| *x = 9.0);
    assert_eq!(t.to_vec_f64(), want);
    assert!(!t.cpu_storage().unwrap().is_shared());
    // The map and the other tensor on it are unchanged.
    let original: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    assert_eq!(other.to_vec_f64(), original);
    let again: Vec<f32> = (*map).as_ref()[..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(again, v);
}

fn data_ptr(t: &Tensor) -> *const u8 {
    match t.cpu_storage().unwrap() {
        CpuStorage::F32(b) => b.as_ptr().cast(),
        CpuStorage::F16(b) => b.as_ptr().cast(),
        other => panic!("unexpected storage {:?}", other.dtype()),
    }
}

#[test]
fn write_slice_in_place_writes_in_place_and_converts() {
    let mut r = rng(3);
    // A KV cache [heads, max_seq, d] in f16, appended at position 5 with f32 values.
    let (h, s, d) = (3, 9, 4);
    let mut cache = Tensor::zeros(&[h, s, d], DType::F16);
    let before = data_ptr(&cache);
    let kv = Tensor::from_f32(values(&mut r, h * 2 * d), &[h, 2, d]).unwrap();
    cache.write_slice_in_place(1, 5, &kv).unwrap();
    assert_eq!(
        data_ptr(&cache),
        before,
        "a unique storage is written in place"
    );
    assert_eq!(cache.dtype(), DType::F16);
    let got = cache.to_vec_f64();
    let kvv = kv.to_vec_f64();
    for hi in 0..h {
        for si in 0..s {
            for di in 0..d {
                let g = got[(hi * s + si) * d + di];
                let want = if (5..7).contains(&si) {
                    f16::from_f64(kvv[(hi * 2 + si - 5) * d + di]).to_f64()
                } else {
                    0.0
                };
                assert_eq!(g, want, "at [{hi}, {si}, {di}]");
            }
        }
    }
}

#[test]
fn write_slice_in_place_copies_when_shared_and_into_views() {
    let mut r = rng(4);
    let base = Tensor::from_f32(values(&mut r, 5 * 6), &[5, 6]).unwrap();
    let snapshot = base.to_vec_f64();
    // Another holder: the write must not show through it.
    let mut t = base.clone();
    let src = Tensor::from_f32(values(&mut r, 5 * 2), &[5, 2]).unwrap();
    t.write_slice_in_place(1, 3, &src).unwrap();
    assert_eq!(base.to_vec_f64(), snapshot);
    assert!(!t.same_storage(&base));
    let (got, sv) = (t.to_vec_f64(), src.to_vec_f64());
    for i in 0..5 {
        for j in 0..6 {
            let want = if (3..5).contains(&j) {
                sv[i * 2 + j - 3]
            } else {
                snapshot[i * 6 + j]
            };
            assert_eq!(got[i * 6 + j], want);
        }
    }
    // A transposed destination view.
    let mut tt = Tensor::from_f32(values(&mut r, 4 * 3), &[4, 3])
        .unwrap()
        .transpose(0, 1)
        .unwrap();
    let old = tt.to_vec_f64();
    let row = Tensor::from_f32(vec![1.5, 2.5, 3.5], &[3, 1]).unwrap();
    tt.write_slice_in_place(1, 2, &row).unwrap();
    let new = tt.to_vec_f64();
    for i in 0..3 {
        for j in 0..4 {
            let want = if j == 2 {
                [1.5, 2.5, 3.5][i]
            } else {
                old[i * 4 + j]
            };
            assert_eq!(new[i * 4 + j], want);
        }
    }
}

#[test]
fn write_slice_in_place_errors() {
    let mut t = Tensor::zeros(&[2, 4], DType::F32);
    let src = Tensor::zeros(&[3, 1], DType::F32);
    let e = t.write_slice_in_place(1, 0, &src).unwrap_err().to_string();
    assert!(
        e.contains("does not match destination [2, 4] outside dimension 1"),
        "{e}"
    );
    let src = Tensor::zeros(&[2, 2], DType::F32);
    let e = t.write_slice_in_place(1, 3, &src).unwrap_err().to_string();
    assert!(
        e.contains("rows 3..5 do not fit in dimension 1 of size 4"),
        "{e}"
    );
    let e = t.write_slice_in_place(2, 0, &src).unwrap_err().to_string();
    assert!(e.contains("out of range"), "{e}");
}

/// A Q4_0 tensor [rows, cols] quantized from random values, with its dequantized values.
fn q4_0(r: &mut ChaCha8Rng, rows: usize, cols: usize) -> (Tensor, Vec<f32>) {
    let v = values(r, rows * cols);
    let bytes = quantize_row(GgmlType::Q4_0, &v).unwrap();
    let mut dense = vec![0f32; v.len()];
    dequantize_row(GgmlType::Q4_0, &bytes, &mut dense).unwrap();
    let t =
        Tensor::from_quantized(GgmlType::Q4_0, HostBuf::from_vec(bytes), &[rows, cols]).unwrap();
    (t, dense)
}

#[test]
fn quantized_tensor_reads_casts_views_and_embedding() {
    let mut r = rng(5);
    let (t, dense) = q4_0(&mut r, 6, 64);
    let dense64: Vec<f64> = dense.iter().map(|&x| x as f64).collect();
    assert_eq!(
        (t.dtype(), t.shape(), t.numel()),
        (DType::Q4_0, &[6usize, 64][..], 384)
    );
    assert_eq!(t.to_vec_f64(), dense64);
    assert_eq!(t.to_string(), "tensor(dtype=q4_0, shape=[6, 64])");
    assert_eq!(t.cast(DType::F32).unwrap().to_vec_f64(), dense64);
    let h = t.cast(DType::F16).unwrap();
    assert_eq!(h.dtype(), DType::F16);
    let hv: Vec<f64> = dense.iter().map(|&x| f16::from_f32(x).to_f64()).collect();
    assert_eq!(h.to_vec_f64(), hv);
    assert_eq!(t.cast(DType::BF16).unwrap().dtype(), DType::BF16);
    // Row views along dim 0 and their contiguous copies.
    let rows = t.narrow(0, 2, 3).unwrap();
    assert_eq!(rows.to_vec_f64(), dense64[2 * 64..5 * 64].to_vec());
    let packed = rows.contiguous().unwrap();
    assert_eq!(
        (packed.dtype(), packed.to_vec_f64()),
        (DType::Q4_0, rows.to_vec_f64())
    );
    assert_eq!(
        t.select(0, -1).unwrap().to_vec_f64(),
        dense64[5 * 64..].to_vec()
    );
    // Embedding expands only the picked rows (f32 result).
    let ids = Tensor::from_i64(vec![4, 0, 4, 1], &[2, 2]).unwrap();
    let e = Tensor::embedding(&t, &ids).unwrap();
    assert_eq!((e.dtype(), e.shape()), (DType::F32, &[2usize, 2, 64][..]));
    let ev = e.to_vec_f64();
    for (k, &id) in [4usize, 0, 4, 1].iter().enumerate() {
        assert_eq!(ev[k * 64..(k + 1) * 64], dense64[id * 64..(id + 1) * 64]);
    }
    let bad = Tensor::from_i64(vec![6], &[1]).unwrap();
    let msg = Tensor::embedding(&t, &bad).unwrap_err().to_string();
    assert!(
        msg.contains("id 6 is out of range for a table of 6 rows"),
        "{msg}"
    );
    // f32 -> Q8_0 -> f32 stays within half a quantization step of each block.
    let v = values(&mut r, 2 * 32);
    let q8 = Tensor::from_f32(v.clone(), &[2, 32])
        .unwrap()
        .cast(DType::Q8_0)
        .unwrap();
    for (blk, got) in v.chunks(32).zip(q8.to_vec_f64().chunks(32)) {
        let step = blk.iter().fold(0f32, |a, x| a.max(x.abs())) as f64 / 127.0;
        for (a, b) in blk.iter().zip(got) {
            assert!((*a as f64 - b).abs() <= 0.5 * step * 1.01 + 1e-3 * step);
        }
    }
}

#[test]
fn unsupported_ops_on_quantized_tensors_say_so() {
    let mut r = rng(6);
    let (t, _) = q4_0(&mut r, 2, 32);
    let f = Tensor::from_f32(values(&mut r, 64), &[2, 32]).unwrap();
    let msg = |res: tl_tensor::Result<Tensor>| res.unwrap_err().to_string();
    let expect =
        |op: &str| format!("not supported yet: {op} on a q4_0 tensor (cast it to float32 first)");
    assert_eq!(msg(t.unary(UnaryOp::Exp)), expect("exp"));
    assert_eq!(msg(t.binary(tl_tensor::BinaryOp::Add, &f)), expect("add"));
    assert_eq!(msg(f.binary(tl_tensor::BinaryOp::Mul, &t)), expect("mul"));
    assert_eq!(msg(t.matmul(&f.transpose(0, 1).unwrap())), expect("matmul"));
    assert_eq!(msg(t.softmax(-1)), expect("softmax"));
    assert_eq!(
        msg(t.reduce(tl_tensor::ReduceOp::Sum, None, false)),
        expect("sum")
    );
    assert_eq!(
        msg(Tensor::concat(&[t.clone(), t.clone()], 0)),
        expect("concat")
    );
    assert_eq!(
        msg(t.rms_norm(&f.select(0, 0).unwrap(), 1e-5)),
        expect("rms_norm")
    );
    let e = msg(t.transpose(0, 1));
    assert!(
        e.starts_with("not supported yet: transpose giving shape [32, 2] on a q4_0 tensor"),
        "{e}"
    );
    let e = msg(t.narrow(1, 0, 16));
    assert!(e.contains("whole blocks of 32"), "{e}");
    assert!(
        Tensor::from_quantized(GgmlType::Q4_0, HostBuf::from_vec(vec![0; 17]), &[1, 32]).is_err()
    );
    let e = Tensor::from_quantized(GgmlType::Q8_0, HostBuf::from_vec(vec![0; 34]), &[2, 16])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a whole number of Q8_0 blocks of 32"), "{e}");
}

#[test]
fn copy_bandwidth_on_the_cpu_and_a_missing_device() {
    use tl_tensor::device::copy_bandwidth;
    // 8 MiB copied 3 times: a rate, in bytes per second, that a host memory copy can reach
    // (above 10 MB/s even in a debug build on a loaded machine, below 10 TB/s).
    let bw = copy_bandwidth(tl_tensor::Device::Cpu, 8 << 20, 3).unwrap();
    assert!(bw.is_finite() && bw > 1e7 && bw < 1e13, "{bw}");
    let e = copy_bandwidth(tl_tensor::Device::Cuda(7), 1 << 20, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cuda:7") && e.contains("not available"), "{e}");
}

/// Resident KiB of the memory mapping that holds `ptr` (Linux `/proc/self/smaps`).
#[cfg(target_os = "linux")]
fn resident_kib(ptr: *const u8) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let at = ptr as usize;
    let mut inside = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((lo, hi)) = first.split_once('-')
            && let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
        {
            inside = lo <= at && at < hi;
        } else if inside && first == "Rss:" {
            return line.split_whitespace().nth(1).unwrap().parse().unwrap();
        }
    }
    panic!("no mapping holds {ptr:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn released_pages_of_a_file_map_leave_memory_and_read_back_the_same() {
    let mut r = rng(9);
    let bytes: Vec<u8> = (0..4 << 20).map(|_| r.random()).collect();
    let file = std::env::temp_dir().join(format!("tl_tensor_{}_release", std::process::id()));
    std::fs::write(&file, &bytes).unwrap();
    // SAFETY: the file is private to this test and not modified while mapped.
    let map =
        Arc::new(unsafe { memmap2::Mmap::map(&std::fs::File::open(&file).unwrap()) }.unwrap());
    std::fs::remove_file(&file).unwrap();
    let buf = HostBuf::<u8>::from_file_map(map.clone(), 0, bytes.len()).unwrap();
    assert_eq!(&buf[..], &bytes[..]);
    assert!(resident_kib(buf.as_ptr()) >= 4000, "every page was read");
    buf.release_resident_pages();
    assert!(resident_kib(buf.as_ptr()) < 100, "the pages were released");
    assert_eq!(&buf[..], &bytes[..], "and read back unchanged");
    // Bytes that are not a file map are never released (that would lose them).
    let owner: SharedBytes = Arc::new(bytes.clone());
    let shared = HostBuf::<u8>::from_shared(owner, 0, bytes.len()).unwrap();
    shared.release_resident_pages();
    assert_eq!(&shared[..], &bytes[..]);
}

#[cfg(target_os = "linux")]
#[test]
fn a_mapped_quantized_weight_is_held_once_after_the_cpu_builds_its_panels() {
    let mut r = rng(10);
    let (rows, cols) = (512, 4096);
    let (w, _) = q4_0(&mut r, rows, cols);
    let Some(CpuStorage::Quantized(_, packed, _)) = w.cpu_storage() else {
        panic!("q4_0 gives packed blocks");
    };
    let file = std::env::temp_dir().join(format!("tl_tensor_{}_panels", std::process::id()));
    std::fs::write(&file, &packed[..]).unwrap();
    // SAFETY: the file is private to this test and not modified while mapped.
    let map =
        Arc::new(unsafe { memmap2::Mmap::map(&std::fs::File::open(&file).unwrap()) }.unwrap());
    std::fs::remove_file(&file).unwrap();
    let buf = HostBuf::<u8>::from_file_map(map, 0, packed.len()).unwrap();
    let start = buf.as_ptr();
    let mapped = Tensor::from_quantized(GgmlType::Q4_0, buf, &[rows, cols]).unwrap();
    assert_eq!(
        mapped.to_vec_f64(),
        w.to_vec_f64(),
        "the map holds the same weight"
    );
    let x = Tensor::from_f32(values(&mut r, cols), &[1, cols]).unwrap();
    let y = x.linear(&mapped, None).unwrap().to_vec_f64();
    assert_eq!(y, x.linear(&w, None).unwrap().to_vec_f64());
    let Some(CpuStorage::Quantized(_, _, panels)) = mapped.cpu_storage() else {
        unreachable!()
    };
    if !panels.is_built() {
        eprintln!("skipped the release check: no row panels for Q4_0 on this CPU");
        return;
    }
    assert!(resident_kib(start) < 100, "the map's pages were released");
    // Products with several rows of x (the few-rows tiles, the tiled gemm) read the panels
    // too, not the file's pages.
    for m in [5, 70] {
        let xs = Tensor::from_f32(values(&mut r, m * cols), &[m, cols]).unwrap();
        let ys = xs.linear(&mapped, None).unwrap().to_vec_f64();
        assert_eq!(ys, xs.linear(&w, None).unwrap().to_vec_f64());
        assert!(resident_kib(start) < 100, "a {m}-row product read the map");
    }
}
