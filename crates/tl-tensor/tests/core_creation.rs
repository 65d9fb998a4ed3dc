//! Creation ops and seeded random tensors.

mod core_util;
use core_util::*;
use tl_tensor::{DType, Tensor, TensorRng};

#[test]
fn constants_in_every_dtype() {
    for dtype in ALL_DTYPES {
        for shape in SHAPES {
            let n: usize = shape.iter().product();
            let z = Tensor::zeros(shape, dtype);
            assert_eq!((z.shape(), z.dtype()), (shape, dtype));
            assert_eq!(z.to_vec_f64(), vec![0.0; n]);
            assert_eq!(Tensor::ones(shape, dtype).to_vec_f64(), vec![1.0; n]);
            let f = Tensor::full(shape, -2.75, dtype);
            let expect = match dtype {
                DType::I64 => -2.0,
                DType::Bool => 1.0,
                _ => -2.75,
            };
            assert_eq!(f.to_vec_f64(), vec![expect; n]);
        }
    }
}

#[test]
fn arange_and_eye() {
    let a = Tensor::arange(0.0, 5.0, 1.0, DType::I64).unwrap();
    assert_eq!(a.to_vec_i64(), vec![0, 1, 2, 3, 4]);
    let b = Tensor::arange(1.0, 2.0, 0.25, DType::F32).unwrap();
    assert_eq!(b.to_vec_f64(), vec![1.0, 1.25, 1.5, 1.75]);
    let c = Tensor::arange(5.0, 0.0, -2.0, DType::F16).unwrap();
    assert_eq!(
        (c.dtype(), c.to_vec_f64()),
        (DType::F16, vec![5.0, 3.0, 1.0])
    );
    assert_eq!(
        Tensor::arange(3.0, 1.0, 1.0, DType::F32).unwrap().shape(),
        &[0]
    );
    assert_eq!(
        Tensor::arange(0.0, 1.0, 0.0, DType::F32).unwrap_err().0,
        "arange: step must not be zero"
    );
    assert!(
        Tensor::arange(0.0, f64::INFINITY, 1.0, DType::F32)
            .unwrap_err()
            .0
            .starts_with("arange:")
    );
    for dtype in ALL_DTYPES {
        for n in [0usize, 1, 7] {
            let e = Tensor::eye(n, dtype);
            assert_eq!(e.shape(), &[n, n]);
            let reference: Vec<f64> = (0..n * n)
                .map(|i| (i / n.max(1) == i % n.max(1)) as u8 as f64)
                .collect();
            assert_eq!(e.to_vec_f64(), reference);
        }
    }
}

#[test]
fn random_tensors_are_seeded_and_in_range() {
    for dtype in FLOAT_DTYPES {
        let mut r1 = TensorRng::seed_from_u64(7);
        let mut r2 = TensorRng::seed_from_u64(7);
        let a = Tensor::rand(&[64, 33], dtype, &mut r1);
        let b = Tensor::rand(&[64, 33], dtype, &mut r2);
        assert_eq!(a.to_vec_f64(), b.to_vec_f64(), "same seed, same tensor");
        let c = Tensor::rand(&[64, 33], dtype, &mut r1);
        assert_ne!(a.to_vec_f64(), c.to_vec_f64(), "the stream moves on");
        let v = a.to_vec_f64();
        assert!(
            v.iter().all(|&x| (0.0..1.0).contains(&x)),
            "{dtype}: uniform in [0, 1)"
        );
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 0.5).abs() < 0.03, "{dtype}: mean {mean}");

        let n = Tensor::randn(&[100, 100], dtype, &mut r1).to_vec_f64();
        let mean = n.iter().sum::<f64>() / n.len() as f64;
        let var = n.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n.len() as f64;
        assert!(
            mean.abs() < 0.05 && (var - 1.0).abs() < 0.05,
            "{dtype}: mean {mean} var {var}"
        );
    }
    let mut r = TensorRng::seed_from_u64(1);
    assert_ne!(
        Tensor::randn(&[8], DType::F32, &mut r).to_vec_f64(),
        Tensor::randn(&[8], DType::F32, &mut TensorRng::seed_from_u64(2)).to_vec_f64()
    );
    let u = r.uniform();
    assert!((0.0..1.0).contains(&u));
    let k = r.int_in(3, 9);
    assert!((3..9).contains(&k));
    assert_eq!(r.int_in(4, 4), 4);
}
