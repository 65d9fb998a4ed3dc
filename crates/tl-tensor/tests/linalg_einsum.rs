//! `einsum` against a naive f64 loop nest over every index assignment: hundreds of random
//! specs (1-3 operands, repeated indices, explicit and implicit outputs, non-contiguous
//! operands), named classic specs, ellipsis broadcasting, and the error messages.

mod linalg_support;

use linalg_support::*;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tl_tensor::{DType, Tensor};

/// The einsum definition, evaluated literally: for every assignment of every index, add the
/// product of the operands' elements to the output element. Letters only.
fn naive_einsum(spec: &str, operands: &[&Tensor]) -> (Vec<f64>, Vec<usize>) {
    let spec: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    let (inputs, output) = match spec.split_once("->") {
        Some((i, o)) => (i, Some(o)),
        None => (spec.as_str(), None),
    };
    let terms: Vec<Vec<char>> = inputs.split(',').map(|t| t.chars().collect()).collect();
    assert_eq!(terms.len(), operands.len());
    let mut sizes: BTreeMap<char, usize> = BTreeMap::new();
    for (t, x) in terms.iter().zip(operands) {
        for (&c, &n) in t.iter().zip(x.shape()) {
            assert_eq!(*sizes.entry(c).or_insert(n), n, "size of '{c}' in '{spec}'");
        }
    }
    let out: Vec<char> = match output {
        Some(o) => o.chars().collect(),
        None => sizes
            .keys()
            .copied()
            .filter(|c| terms.iter().flatten().filter(|x| *x == c).count() == 1)
            .collect(), // BTreeMap keys are sorted: uppercase before lowercase, as NumPy
    };
    let labels: Vec<char> = sizes.keys().copied().collect();
    let dims: Vec<usize> = labels.iter().map(|c| sizes[c]).collect();
    let out_shape: Vec<usize> = out.iter().map(|c| sizes[c]).collect();
    let values: Vec<Vec<f64>> = operands.iter().map(|t| t.to_vec_f64()).collect();
    let mut result = vec![0.0; out_shape.iter().product()];
    let total: usize = dims.iter().product();
    let pos = |c: &char| labels.iter().position(|l| l == c).unwrap();
    for flat in 0..total {
        let assign = unravel(flat, &dims);
        let mut prod = 1.0;
        for ((t, x), v) in terms.iter().zip(operands).zip(&values) {
            let idx: Vec<usize> = t.iter().map(|c| assign[pos(c)]).collect();
            prod *= v[ravel(&idx, x.shape())];
        }
        let oi: Vec<usize> = out.iter().map(|c| assign[pos(c)]).collect();
        result[ravel(&oi, &out_shape)] += prod;
    }
    (result, out_shape)
}

fn check(spec: &str, operands: &[&Tensor], dtype: DType) {
    let (reference, shape) = naive_einsum(spec, operands);
    let out = Tensor::einsum(spec, operands).unwrap_or_else(|e| panic!("{spec}: {e}"));
    assert_close(&out, &shape, &reference, dtype, spec);
}

/// A random operand of `shape`, sometimes as a non-contiguous view.
fn operand(r: &mut ChaCha8Rng, shape: &[usize], dtype: DType) -> Tensor {
    match r.random_range(0..3) {
        0 if shape.len() >= 2 => rand_transposed(r, shape, dtype),
        1 if !shape.is_empty() => rand_strided(r, shape, dtype),
        _ => rand_tensor(r, shape, dtype),
    }
}

/// A random valid spec with operands: 1-3 operands of rank 0-4 over a small pool of letters
/// (repeats allowed), and an explicit output (random subset, random order) or implicit.
fn random_case(r: &mut ChaCha8Rng, dtype: DType) -> (String, Vec<Tensor>) {
    loop {
        let pool_all = ['a', 'b', 'c', 'd', 'e', 'i', 'j', 'B', 'Z'];
        let pool_len = r.random_range(1..=6);
        let mut pool = pool_all.to_vec();
        pool.shuffle(r);
        pool.truncate(pool_len);
        let sizes: BTreeMap<char, usize> =
            pool.iter().map(|&c| (c, r.random_range(1..=5))).collect();
        let n_ops = r.random_range(1..=3);
        let terms: Vec<Vec<char>> = (0..n_ops)
            .map(|_| {
                let rank = r.random_range(0..=4);
                (0..rank)
                    .map(|_| pool[r.random_range(0..pool.len())])
                    .collect()
            })
            .collect();
        let mut used: Vec<char> = terms.iter().flatten().copied().collect();
        used.sort_unstable();
        used.dedup();
        let work: usize = used.iter().map(|c| sizes[c]).product();
        if work > 3000 {
            continue;
        }
        let inputs: Vec<String> = terms.iter().map(|t| t.iter().collect()).collect();
        let mut spec = inputs.join(",");
        if r.random_bool(0.7) {
            used.shuffle(r);
            let keep = r.random_range(0..=used.len());
            spec.push_str("->");
            spec.extend(&used[..keep]);
        }
        let ops = terms
            .iter()
            .map(|t| {
                let shape: Vec<usize> = t.iter().map(|c| sizes[c]).collect();
                operand(r, &shape, dtype)
            })
            .collect();
        return (spec, ops);
    }
}

#[test]
fn random_specs_f32() {
    let mut r = rng(30);
    for case in 0..400 {
        let (spec, ops) = random_case(&mut r, DType::F32);
        let refs: Vec<&Tensor> = ops.iter().collect();
        let (reference, shape) = naive_einsum(&spec, &refs);
        let out =
            Tensor::einsum(&spec, &refs).unwrap_or_else(|e| panic!("case {case} '{spec}': {e}"));
        assert_close(
            &out,
            &shape,
            &reference,
            DType::F32,
            &format!("case {case} '{spec}'"),
        );
    }
}

#[test]
fn random_specs_half_types() {
    let mut r = rng(31);
    for dtype in [DType::F16, DType::BF16] {
        for case in 0..80 {
            let (spec, ops) = random_case(&mut r, dtype);
            let refs: Vec<&Tensor> = ops.iter().collect();
            let (reference, shape) = naive_einsum(&spec, &refs);
            let out = Tensor::einsum(&spec, &refs)
                .unwrap_or_else(|e| panic!("case {case} '{spec}': {e}"));
            assert_close(
                &out,
                &shape,
                &reference,
                dtype,
                &format!("{dtype} case {case} '{spec}'"),
            );
        }
    }
}

#[test]
fn classic_specs() {
    let mut r = rng(32);
    for dtype in FLOATS {
        let a = operand(&mut r, &[17, 65], dtype);
        let b = operand(&mut r, &[65, 3], dtype);
        let c = operand(&mut r, &[3, 17], dtype);
        let sq = operand(&mut r, &[17, 17], dtype);
        let v = rand_tensor(&mut r, &[17], dtype);
        let w = rand_tensor(&mut r, &[65], dtype);
        let batch_a = operand(&mut r, &[3, 17, 130], dtype);
        let batch_b = operand(&mut r, &[3, 130, 5], dtype);
        let q = rand_tensor(&mut r, &[2, 4, 5, 8], dtype);
        let k = rand_tensor(&mut r, &[2, 4, 7, 8], dtype);
        let cube = rand_tensor(&mut r, &[3, 3, 3], dtype);
        check("ij,jk->ik", &[&a, &b], dtype);
        check("ij,jk", &[&a, &b], dtype);
        check("ij,jk,kl->il", &[&a, &b, &c], dtype);
        check("ij,jk,ki->", &[&a, &b, &c], dtype);
        check("ii->", &[&sq], dtype);
        check("ii", &[&sq], dtype);
        check("ii->i", &[&sq], dtype);
        check("iii->i", &[&cube], dtype);
        check("iij->j", &[&cube], dtype);
        check("ij->ji", &[&a], dtype);
        check("ji", &[&a], dtype);
        check("ij->", &[&a], dtype);
        check("ij->j", &[&a], dtype);
        check("i,j->ij", &[&v, &w], dtype);
        check("i,i->", &[&v, &v], dtype);
        check("i,i->i", &[&v, &v], dtype);
        check("ij,j->i", &[&a, &w], dtype);
        check("bij,bjk->bik", &[&batch_a, &batch_b], dtype);
        check("bij,bjk->bki", &[&batch_a, &batch_b], dtype);
        check("bhqd,bhkd->bhqk", &[&q, &k], dtype);
        check("bhqd,bhkd->bqk", &[&q, &k], dtype);
        check("ij,ij->ij", &[&a, &a], dtype);
        check(" i j , j k -> i k ", &[&a, &b], dtype);
    }
}

/// Materialises a broadcast of `t` to `shape` as a contiguous tensor (for references).
fn expanded(t: &Tensor, shape: &[usize]) -> Tensor {
    t.broadcast_to(shape).unwrap().contiguous().unwrap()
}

#[test]
fn ellipsis_broadcasts() {
    let mut r = rng(33);
    let a = rand_tensor(&mut r, &[2, 1, 3, 4], DType::F32);
    let b = rand_tensor(&mut r, &[5, 4, 6], DType::F32);
    let out = Tensor::einsum("...ij,...jk->...ik", &[&a, &b]).unwrap();
    let (reference, shape) = naive_einsum(
        "xyij,xyjk->xyik",
        &[&expanded(&a, &[2, 5, 3, 4]), &expanded(&b, &[2, 5, 4, 6])],
    );
    assert_close(&out, &shape, &reference, DType::F32, "...ij,...jk->...ik");
    // Implicit output puts the ellipsis dims first.
    let out = Tensor::einsum("...ij,...jk", &[&a, &b]).unwrap();
    assert_close(&out, &shape, &reference, DType::F32, "...ij,...jk");

    let m = rand_tensor(&mut r, &[2, 3, 4, 4], DType::F32);
    let out = Tensor::einsum("...ii->...i", &[&m]).unwrap();
    let (reference, shape) = naive_einsum("xyii->xyi", &[&m]);
    assert_close(&out, &shape, &reference, DType::F32, "...ii->...i");
    let out = Tensor::einsum("i...->...", &[&m]).unwrap();
    let (reference, shape) = naive_einsum("ixyz->xyz", &[&m]);
    assert_close(&out, &shape, &reference, DType::F32, "i...->...");
    let out = Tensor::einsum("...j->j", &[&m]).unwrap();
    let (reference, shape) = naive_einsum("xyzj->j", &[&m]);
    assert_close(
        &out,
        &shape,
        &reference,
        DType::F32,
        "...j->j (ellipsis summed)",
    );
    let out = Tensor::einsum("a...b->ba...", &[&m]).unwrap();
    let (reference, shape) = naive_einsum("axyb->baxy", &[&m]);
    assert_close(&out, &shape, &reference, DType::F32, "a...b->ba...");
    let v = rand_tensor(&mut r, &[4], DType::F32);
    let out = Tensor::einsum("...,...->...", &[&m, &v]).unwrap();
    let (reference, shape) = naive_einsum("wxyz,wxyz->wxyz", &[&m, &expanded(&v, &[2, 3, 4, 4])]);
    assert_close(&out, &shape, &reference, DType::F32, "...,...->...");
}

#[test]
fn broadcast_ellipsis_dims_that_are_summed() {
    let mut r = rng(35);
    // The size-1 `...` dim of `b` is broadcast (stride 0) and then summed away, so the
    // matrix product reads an operand with a zero stride.
    let a = rand_tensor(&mut r, &[5, 3], DType::F32);
    let b = rand_tensor(&mut r, &[1, 3], DType::F32);
    for spec in ["...i,...i->i", "...i,...i->", "...i,...j->ij"] {
        let out = Tensor::einsum(spec, &[&a, &b]).unwrap();
        let letters = spec.replace("...", "x");
        let (reference, shape) = naive_einsum(&letters, &[&a, &expanded(&b, &[5, 3])]);
        assert_close(&out, &shape, &reference, DType::F32, spec);
    }
    let c = rand_tensor(&mut r, &[2, 1, 4], DType::F32);
    let d = rand_tensor(&mut r, &[6, 4], DType::F32);
    let out = Tensor::einsum("...k,...k->...", &[&c, &d]).unwrap();
    let (reference, shape) = naive_einsum(
        "xyk,xyk->xy",
        &[&expanded(&c, &[2, 6, 4]), &expanded(&d, &[2, 6, 4])],
    );
    assert_close(&out, &shape, &reference, DType::F32, "...k,...k->...");
}

#[test]
fn spec_errors() {
    let mut r = rng(34);
    let a = rand_tensor(&mut r, &[3, 4], DType::F32);
    let b = rand_tensor(&mut r, &[5, 6], DType::F32);
    let err = |spec: &str, ops: &[&Tensor]| Tensor::einsum(spec, ops).unwrap_err().0;
    assert_eq!(
        err("ij,jk->ik", &[&a, &b]),
        "einsum: index 'j' has size 4 in operand 0 but 5 in operand 1 (shapes [3, 4] and [5, 6])"
    );
    assert_eq!(
        err("ij,jk->ik", &[&a]),
        "einsum: spec 'ij,jk->ik' names 2 operand(s) but 1 were given"
    );
    assert_eq!(
        err("ijk->i", &[&a]),
        "einsum: operand 0 has shape [3, 4] (2 dims) but its subscripts in 'ijk->i' name 3"
    );
    assert_eq!(
        err("i1->i", &[&a]),
        "einsum: invalid character '1' in spec 'i1->i' (indices are letters a-z, A-Z)"
    );
    assert_eq!(
        err("ij->i->j", &[&a]),
        "einsum: spec 'ij->i->j' has more than one '->'"
    );
    assert_eq!(
        err("ij->ii", &[&a]),
        "einsum: output index 'i' appears more than once in 'ij->ii'"
    );
    assert_eq!(
        err("ij->z", &[&a]),
        "einsum: output index 'z' does not appear in any input of 'ij->z'"
    );
    assert_eq!(
        err("i.j->i", &[&a]),
        "einsum: a lone '.' in spec 'i.j->i' (an ellipsis is written '...')"
    );
    assert_eq!(
        err("...i...->i", &[&a]),
        "einsum: more than one '...' in the term '...i...' of spec '...i...->i'"
    );
    assert_eq!(
        err("", &[&a]),
        "einsum: operand 0 has shape [3, 4] (2 dims) but its subscripts in '' name 0"
    );
    let sq = rand_tensor(&mut r, &[3, 4], DType::F32);
    assert_eq!(
        err("ii->i", &[&sq]),
        "einsum: index 'i' has size 3 in operand 0 but 4 in operand 0 (shapes [3, 4] and [3, 4])"
    );
    let i = Tensor::from_i64(vec![1, 2], &[2]).unwrap();
    assert_eq!(
        err("i->", &[&i]),
        "einsum: integer tensors are not supported yet (cast to float32 first)"
    );
    let x = rand_tensor(&mut r, &[2, 3], DType::F32);
    let y = rand_tensor(&mut r, &[4, 3], DType::F32);
    assert!(
        err("...i,...i->...", &[&x, &y])
            .starts_with("einsum: index ... dim 0 has size 2 in operand 0 but 4 in operand 1")
    );
}
