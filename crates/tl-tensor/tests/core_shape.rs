//! Shape ops: views share storage and copy only when needed; values against index math.

mod core_util;
use core_util::*;
use tl_tensor::{DType, Tensor};

fn arange(shape: &[usize], dtype: DType) -> (Vec<f64>, Tensor) {
    let mut r = rng(shape.iter().product::<usize>() as u64 + 11);
    let n: usize = shape.iter().product();
    let v = rounded(&values_for(&mut r, n, dtype), dtype);
    let t = Tensor::from_f64(&v, shape, dtype).unwrap();
    (v, t)
}

#[test]
fn reshape_of_contiguous_is_a_view() {
    for dtype in ALL_DTYPES {
        let (v, t) = arange(&[2, 3, 4], dtype);
        let r = t.reshape(&[4, -1]).unwrap();
        assert_eq!(r.shape(), &[4, 6]);
        assert!(r.same_storage(&t));
        assert_eq!(r.to_vec_f64(), v);
        let f = t.flatten().unwrap();
        assert_eq!(f.shape(), &[24]);
        assert!(f.same_storage(&t));
        let w = t.view(&[-1, 2]).unwrap();
        assert_eq!(w.shape(), &[12, 2]);
        assert!(w.same_storage(&t));
    }
    let s = Tensor::scalar(2.0, DType::F32);
    assert_eq!(s.reshape(&[1, 1]).unwrap().shape(), &[1, 1]);
    assert_eq!(s.flatten().unwrap().shape(), &[1]);
    let e = Tensor::zeros(&[0, 3], DType::F32);
    assert_eq!(e.reshape(&[3, 0]).unwrap().shape(), &[3, 0]);
}

#[test]
fn reshape_of_transposed_copies_and_keeps_order() {
    let mut r = rng(20);
    for kind in [Kind::Transposed, Kind::Strided] {
        for shape in [&[3usize, 5][..], &[4, 1, 9], &[2, 3, 4, 5]] {
            let n: usize = shape.iter().product();
            let v = rounded(&values(&mut r, n), DType::F32);
            let t = make(&v, shape, DType::F32, kind);
            let flat = t.reshape(&[-1]).unwrap();
            assert_eq!(flat.to_vec_f64(), v);
            if kind == Kind::Transposed {
                assert!(!flat.same_storage(&t), "{shape:?} must copy");
                let e = t.view(&[-1]).unwrap_err();
                assert!(e.0.starts_with("view:"), "{e}");
            } else {
                // Every other element: one stride-2 dimension, still a view.
                assert!(flat.same_storage(&t), "{shape:?} is viewable");
                assert_eq!(flat.layout().strides, vec![2]);
            }
        }
    }
    // A reshape that only splits a dim of a transposed view is still a view.
    let (v, t) = arange(&[6, 4], DType::F32);
    let tt = t.transpose(0, 1).unwrap(); // [4, 6]
    let split = tt.reshape(&[4, 2, 3]).unwrap();
    assert!(split.same_storage(&t));
    let reference: Vec<f64> = (0..24)
        .map(|i| {
            let idx = unravel(i, &[4, 2, 3]);
            v[(idx[1] * 3 + idx[2]) * 4 + idx[0]]
        })
        .collect();
    assert_eq!(split.to_vec_f64(), reference);
}

#[test]
fn reshape_errors_name_both_shapes() {
    let t = Tensor::zeros(&[2, 3], DType::F32);
    let e = t.reshape(&[4, 2]).unwrap_err();
    assert_eq!(
        e.0,
        "reshape: cannot reshape tensor of shape [2, 3] (6 elements) into [4, 2] (8 elements)"
    );
    let e = t.reshape(&[4, -1]).unwrap_err();
    assert!(
        e.0.starts_with("reshape: cannot reshape tensor of shape [2, 3] (6 elements)"),
        "{e}"
    );
    assert!(
        t.reshape(&[-1, -1])
            .unwrap_err()
            .0
            .starts_with("reshape: only one dimension")
    );
    assert!(
        t.reshape(&[-2, 3])
            .unwrap_err()
            .0
            .starts_with("reshape: invalid dimension -2")
    );
}

#[test]
fn transpose_and_permute_are_views() {
    for dtype in ALL_DTYPES {
        let shape = [2, 3, 4];
        let (v, t) = arange(&shape, dtype);
        let p = t.permute(&[2, 0, 1]).unwrap();
        assert_eq!(p.shape(), &[4, 2, 3]);
        assert!(p.same_storage(&t));
        assert!(!p.is_contiguous());
        let reference: Vec<f64> = (0..24)
            .map(|i| {
                let o = unravel(i, &[4, 2, 3]);
                v[ravel(&[o[1], o[2], o[0]], &shape)]
            })
            .collect();
        assert_eq!(p.to_vec_f64(), reference);
        let q = t.transpose(-1, 0).unwrap();
        assert_eq!(q.shape(), &[4, 3, 2]);
        let reference: Vec<f64> = (0..24)
            .map(|i| {
                let o = unravel(i, &[4, 3, 2]);
                v[ravel(&[o[2], o[1], o[0]], &shape)]
            })
            .collect();
        assert_eq!(q.to_vec_f64(), reference);
        let c = q.contiguous().unwrap();
        assert!(c.is_contiguous() && !c.same_storage(&t));
        assert_eq!(c.to_vec_f64(), reference);
        assert!(
            t.contiguous().unwrap().same_storage(&t),
            "contiguous of contiguous must not copy"
        );
    }
    let t = Tensor::zeros(&[2, 3], DType::F32);
    assert_eq!(
        t.transpose(0, 2).unwrap_err().0,
        "transpose: dimension 2 is out of range for a tensor of rank 2"
    );
    assert!(t.permute(&[0]).unwrap_err().0.starts_with("permute:"));
    assert!(
        t.permute(&[0, 0])
            .unwrap_err()
            .0
            .starts_with("permute: dimension 0 appears twice")
    );
}

#[test]
fn broadcast_to_and_expand_use_stride_zero() {
    let (v, t) = arange(&[3, 1], DType::F32);
    let b = t.broadcast_to(&[2, 3, 4]).unwrap();
    assert!(b.same_storage(&t));
    assert_eq!(b.layout().strides, vec![0, 1, 0]);
    let reference: Vec<f64> = (0..24).map(|i| v[unravel(i, &[2, 3, 4])[1]]).collect();
    assert_eq!(b.to_vec_f64(), reference);
    let x = t.expand(&[2, -1, 5]).unwrap();
    assert_eq!(x.shape(), &[2, 3, 5]);
    let e = t.broadcast_to(&[2, 4]).unwrap_err();
    assert_eq!(
        e.0,
        "broadcast_to: shape [3, 1] cannot be broadcast to [2, 4]"
    );
    assert!(t.broadcast_to(&[3]).is_err());
    assert!(t.expand(&[4, -1]).unwrap_err().0.starts_with("expand:"));
}

#[test]
fn squeeze_unsqueeze() {
    let (v, t) = arange(&[1, 3, 1, 2], DType::I64);
    let s = t.squeeze(None).unwrap();
    assert_eq!(s.shape(), &[3, 2]);
    assert!(s.same_storage(&t));
    assert_eq!(s.to_vec_f64(), v);
    assert_eq!(t.squeeze(Some(-2)).unwrap().shape(), &[1, 3, 2]);
    assert_eq!(t.squeeze(Some(1)).unwrap().shape(), &[1, 3, 1, 2]);
    let u = s.unsqueeze(-1).unwrap();
    assert_eq!(u.shape(), &[3, 2, 1]);
    assert_eq!(s.unsqueeze(0).unwrap().shape(), &[1, 3, 2]);
    assert_eq!(s.unsqueeze(1).unwrap().shape(), &[3, 1, 2]);
    assert_eq!(u.to_vec_f64(), v);
    // Unsqueeze of a transposed view keeps a valid layout.
    let tt = s.transpose(0, 1).unwrap().unsqueeze(1).unwrap();
    assert_eq!(tt.shape(), &[2, 1, 3]);
    assert_eq!(
        tt.reshape(&[6]).unwrap().to_vec_f64(),
        s.transpose(0, 1).unwrap().to_vec_f64()
    );
    assert!(
        s.unsqueeze(3)
            .unwrap_err()
            .0
            .starts_with("unsqueeze: dimension 3 is out of range")
    );
    assert!(s.squeeze(Some(2)).unwrap_err().0.starts_with("squeeze:"));
}

#[test]
fn slice_narrow_select_follow_python_semantics() {
    let mut r = rng(21);
    for kind in KINDS {
        for n in [1usize, 7, 33] {
            let v = rounded(&values(&mut r, n * 3), DType::F32);
            let t = make(&v, &[3, n], DType::F32, kind);
            let ni = n as isize;
            for (start, end, step) in [
                (None, None, 1),
                (Some(1), None, 2),
                (Some(-3), Some(-1), 1),
                (Some(-100), Some(100), 3),
                (Some(5), Some(2), 1),
                (Some(ni), None, 1),
            ] {
                let s = t.slice(1, start, end, step).unwrap();
                assert!(s.same_storage(&t));
                let norm = |i: isize| if i < 0 { (i + ni).max(0) } else { i.min(ni) } as usize;
                let a = start.map_or(0, norm);
                let b = end.map_or(n, norm);
                let cols: Vec<usize> = (a..b.max(a)).step_by(step).collect();
                assert_eq!(s.shape(), &[3, cols.len()]);
                let reference: Vec<f64> = (0..3)
                    .flat_map(|row| cols.iter().map(move |&c| (row, c)))
                    .map(|(row, c)| v[row * n + c])
                    .collect();
                assert_eq!(
                    s.to_vec_f64(),
                    reference,
                    "{kind:?} {start:?}..{end:?} step {step}"
                );
            }
            let nr = t.narrow(0, 1, 2).unwrap();
            assert!(nr.same_storage(&t));
            assert_eq!(nr.to_vec_f64(), v[n..].to_vec());
            let sel = t.select(1, -1).unwrap();
            assert_eq!(sel.shape(), &[3]);
            assert!(sel.same_storage(&t));
            assert_eq!(
                sel.to_vec_f64(),
                (0..3).map(|row| v[row * n + n - 1]).collect::<Vec<_>>()
            );
            let sel0 = t.select(0, 2).unwrap();
            assert_eq!(sel0.to_vec_f64(), v[2 * n..].to_vec());
        }
    }
    let t = Tensor::zeros(&[3, 4], DType::F32);
    assert_eq!(
        t.select(0, 5).unwrap_err().0,
        "select: index 5 is out of bounds for dimension 0 of size 3"
    );
    assert_eq!(
        t.select(0, -4).unwrap_err().0,
        "select: index -4 is out of bounds for dimension 0 of size 3"
    );
    assert!(
        t.slice(0, None, None, 0)
            .unwrap_err()
            .0
            .starts_with("slice: step")
    );
    assert!(
        t.narrow(1, 3, 2)
            .unwrap_err()
            .0
            .starts_with("narrow: start 3 + length 2 exceeds dimension 1 of size 4")
    );
    assert!(
        t.slice(2, None, None, 1)
            .unwrap_err()
            .0
            .starts_with("slice: dimension 2 is out of range")
    );
}

#[test]
fn ops_on_views_of_views() {
    // A slice of a transpose of a broadcast, then an op and a reshape.
    let (v, t) = arange(&[5, 1], DType::F32);
    let view = t
        .broadcast_to(&[5, 6])
        .unwrap()
        .transpose(0, 1)
        .unwrap()
        .slice(1, Some(1), None, 2)
        .unwrap(); // [6, 2]: rows j, cols i in {1, 3}
    assert!(view.same_storage(&t));
    let reference: Vec<f64> = (0..6).flat_map(|_| [v[1], v[3]]).collect();
    assert_eq!(view.to_vec_f64(), reference);
    assert_eq!(view.reshape(&[12]).unwrap().to_vec_f64(), reference);
    assert_eq!(view.contiguous().unwrap().to_vec_f64(), reference);
}

#[test]
fn contiguous_of_large_transposed_views_uses_tiles_correctly() {
    let mut r = rng(22);
    for dtype in [DType::F32, DType::F16, DType::I64, DType::Bool] {
        for (shape, perm) in [
            (&[70usize, 45][..], &[1isize, 0][..]),
            (&[3, 40, 37], &[0, 2, 1]),
            (&[33, 5, 65], &[2, 1, 0]),
            (&[9, 34, 2, 40], &[3, 1, 2, 0]),
        ] {
            let n: usize = shape.iter().product();
            let v = rounded(&values_for(&mut r, n, dtype), dtype);
            let t = Tensor::from_f64(&v, shape, dtype).unwrap();
            let p = t.permute(perm).unwrap();
            let c = p.contiguous().unwrap();
            assert!(c.is_contiguous() && !c.same_storage(&t));
            let out_shape: Vec<usize> = perm.iter().map(|&d| shape[d as usize]).collect();
            assert_eq!(c.shape(), out_shape.as_slice());
            let reference: Vec<f64> = (0..n)
                .map(|i| {
                    let o = unravel(i, &out_shape);
                    let mut src = vec![0; shape.len()];
                    for (k, &d) in perm.iter().enumerate() {
                        src[d as usize] = o[k];
                    }
                    v[ravel(&src, shape)]
                })
                .collect();
            assert_eq!(c.to_vec_f64(), reference, "{dtype} {shape:?} {perm:?}");
            // A copy through cast and a binary op on the same view agree too.
            assert_eq!(p.cast(DType::F32).unwrap().to_vec_f64(), reference);
        }
    }
}
