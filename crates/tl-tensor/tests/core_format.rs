//! `Display` for tensors: PyTorch-repr style.

use tl_tensor::{DType, Tensor};

fn f32s(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_f32(v.to_vec(), shape).unwrap()
}

#[test]
fn floats_rank_0_1_2() {
    assert_eq!(
        Tensor::scalar(3.5, DType::F32).to_string(),
        "tensor(3.5000)"
    );
    assert_eq!(
        f32s(&[1.0, 2.5, -3.0], &[3]).to_string(),
        "tensor([ 1.0000,  2.5000, -3.0000])"
    );
    assert_eq!(
        f32s(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).to_string(),
        "tensor([[1.0000, 2.0000],\n        [3.0000, 4.0000]])"
    );
    assert_eq!(
        f32s(&[0.0, 0.0], &[2]).to_string(),
        "tensor([0.0000, 0.0000])"
    );
    assert_eq!(
        f32s(&[123.456, 0.5], &[2]).to_string(),
        "tensor([123.4560,   0.5000])"
    );
}

#[test]
fn ints_and_bools() {
    assert_eq!(
        Tensor::from_i64(vec![1, 2, 3], &[3]).unwrap().to_string(),
        "tensor([1, 2, 3])"
    );
    assert_eq!(
        Tensor::from_i64(vec![1, -20], &[2]).unwrap().to_string(),
        "tensor([  1, -20])"
    );
    assert_eq!(Tensor::scalar(-7.0, DType::I64).to_string(), "tensor(-7)");
    assert_eq!(
        Tensor::from_bool(vec![true, false], &[2])
            .unwrap()
            .to_string(),
        "tensor([ true, false])"
    );
    assert_eq!(
        Tensor::from_bool(vec![true, true], &[2])
            .unwrap()
            .to_string(),
        "tensor([true, true])"
    );
    // Large ints print exactly.
    let big = Tensor::from_i64(vec![9_007_199_254_740_993], &[1]).unwrap();
    assert_eq!(big.to_string(), "tensor([9007199254740993])");
}

#[test]
fn rank_3_separates_blocks_with_blank_lines() {
    let t = Tensor::from_i64((0..8).collect(), &[2, 2, 2]).unwrap();
    assert_eq!(
        t.to_string(),
        "tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]])"
    );
}

#[test]
fn scientific_notation() {
    assert_eq!(
        f32s(&[1e6, 1.0], &[2]).to_string(),
        "tensor([1.0000e+06, 1.0000e+00])"
    );
    assert_eq!(
        f32s(&[1e-5, 2e-5], &[2]).to_string(),
        "tensor([1.0000e-05, 2.0000e-05])"
    );
    assert_eq!(f32s(&[2e8], &[1]).to_string(), "tensor([2.0000e+08])");
    assert_eq!(
        f32s(&[-1.5e9, 3.0e9], &[2]).to_string(),
        "tensor([-1.5000e+09,  3.0000e+09])"
    );
    // A ratio of exactly 1000 stays fixed.
    assert_eq!(
        f32s(&[1000.0, 1.0], &[2]).to_string(),
        "tensor([1000.0000,    1.0000])"
    );
}

#[test]
fn non_finite_values() {
    assert_eq!(
        f32s(&[1.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN], &[4]).to_string(),
        "tensor([1.0000,    inf,   -inf,    nan])"
    );
}

#[test]
fn half_dtypes_get_a_suffix() {
    let h = Tensor::from_f64(&[1.0, 2.0], &[2], DType::F16).unwrap();
    assert_eq!(h.to_string(), "tensor([1.0000, 2.0000], dtype=float16)");
    let b = Tensor::from_f64(&[0.5], &[], DType::BF16).unwrap();
    assert_eq!(b.to_string(), "tensor(0.5000, dtype=bfloat16)");
}

#[test]
fn empty_tensors() {
    assert_eq!(Tensor::zeros(&[0], DType::F32).to_string(), "tensor([])");
    assert_eq!(
        Tensor::zeros(&[0, 3], DType::F32).to_string(),
        "tensor([], size=(0, 3))"
    );
    assert_eq!(
        Tensor::zeros(&[2, 0], DType::F16).to_string(),
        "tensor([], size=(2, 0), dtype=float16)"
    );
}

#[test]
fn long_rows_wrap_at_80_columns() {
    let t = Tensor::arange(0.0, 20.0, 1.0, DType::F32).unwrap();
    // Width 7 ("19.0000") + 2 = 9 columns per item, (80 - 7) / 9 = 8 items per line.
    assert_eq!(
        t.to_string(),
        "tensor([ 0.0000,  1.0000,  2.0000,  3.0000,  4.0000,  5.0000,  6.0000,  7.0000,\n         8.0000,  9.0000, 10.0000, 11.0000, 12.0000, 13.0000, 14.0000, 15.0000,\n        16.0000, 17.0000, 18.0000, 19.0000])"
    );
}

#[test]
fn large_tensors_are_summarised() {
    let t = Tensor::arange(0.0, 2000.0, 1.0, DType::I64).unwrap();
    assert_eq!(
        t.to_string(),
        "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"
    );
    let m = Tensor::arange(0.0, 1600.0, 1.0, DType::I64)
        .unwrap()
        .reshape(&[40, 40])
        .unwrap();
    assert_eq!(
        m.to_string(),
        "tensor([[   0,    1,    2,  ...,   37,   38,   39],
        [  40,   41,   42,  ...,   77,   78,   79],
        [  80,   81,   82,  ...,  117,  118,  119],
        ...,
        [1480, 1481, 1482,  ..., 1517, 1518, 1519],
        [1520, 1521, 1522,  ..., 1557, 1558, 1559],
        [1560, 1561, 1562,  ..., 1597, 1598, 1599]])"
    );
    // Exactly 1000 elements are printed in full.
    let full = Tensor::zeros(&[1000], DType::I64).to_string();
    assert!(!full.contains("..."));
    assert_eq!(full.matches('0').count(), 1000);
}

#[test]
fn views_print_their_logical_order() {
    let t = Tensor::from_i64((0..6).collect(), &[2, 3])
        .unwrap()
        .transpose(0, 1)
        .unwrap();
    assert_eq!(
        t.to_string(),
        "tensor([[0, 3],\n        [1, 4],\n        [2, 5]])"
    );
}
