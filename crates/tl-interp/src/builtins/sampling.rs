//! Sampling builtins, computed on the host from one read of the logits:
//! `temperature_sample top_k top_p sample`. Random draws come from the interpreter's seeded
//! generator, or from a fresh one when `seed:` is given, so runs are reproducible.

use tl_tensor::random::TensorRng;
use tl_tensor::{DType, Tensor};

use super::args::at_call;
use super::{Builtin, CallArgs};
use crate::error::Result;
use crate::interp::Interpreter;
use crate::value::Value;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "temperature_sample",
        signature: "temperature_sample(logits: tensor, t: float) -> int",
        category: "sampling",
        doc: "Draws a token id (a host int) from softmax(logits / t), using the interpreter's \
              seeded random generator. `logits` is a 1-D tensor of scores over the vocabulary, or \
              a 2-D (or higher) one whose last row is used ([seq, vocab] logits straight from a \
              model). `t` is the temperature: below 1 sharpens the distribution, above 1 flattens \
              it, and 0 (or less) picks the argmax deterministically. Reads the logits once. \
              Errors: a rank-0 tensor, an empty vocabulary, logits that are all -inf or NaN, a \
              non-numeric t.",
        func: temperature_sample,
    },
    Builtin {
        name: "top_k",
        signature: "top_k(logits: tensor, k: int) -> tensor",
        category: "sampling",
        doc: "The logits with every entry except the `k` largest set to -inf, so that a later \
              softmax or sample only picks among the top k. `logits` is a 1-D tensor, or a 2-D \
              (or higher) one whose last row is used; the result is 1-D of the vocabulary size in \
              the logits' float dtype (int logits give float32). Ties at the k-th value keep the \
              lower ids. A k at least the vocabulary size returns the row unchanged. Errors: k \
              below 1, a rank-0 tensor.",
        func: top_k,
    },
    Builtin {
        name: "top_p",
        signature: "top_p(logits: tensor, p: float) -> tensor",
        category: "sampling",
        doc: "Nucleus filtering: keeps the smallest set of highest-probability entries whose \
              softmax probabilities add up to at least `p` and sets the other logits to -inf \
              (the most likely entry is always kept). `logits` is a 1-D tensor or a 2-D (or \
              higher) one whose last row is used; the result is 1-D, in the logits' float dtype. \
              `p` must be in (0, 1]; 1 keeps everything. Errors: p outside (0, 1], logits that \
              are all -inf, a rank-0 tensor.",
        func: top_p,
    },
    Builtin {
        name: "sample",
        signature: "sample(logits: tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = none) -> int",
        category: "sampling",
        doc: "Picks the next token id (a host int) from `logits` (1-D, or the last row of a 2-D \
              or higher tensor). `temperature` (second argument or `temperature:`, default 1.0) \
              divides the logits; 0 means greedy argmax and ignores the rest. Then `top_k:` \
              (default 0 = off) keeps the k largest, `top_p:` (default 1.0 = off) keeps the \
              smallest set reaching that probability, and an id is drawn from the softmax of \
              what remains. The draw uses the interpreter's seeded generator, or a fresh one \
              seeded with `seed:` (the same seed and logits give the same id). Reads the logits \
              once. Errors: negative temperature, top_k below 0, top_p outside (0, 1], logits \
              that are all -inf, an unknown named argument.",
        func: sample,
    },
];

/// The scores to sample from: a 1-D tensor, or the last row of a higher-rank one, read to the
/// host once.
fn logits_row(args: &CallArgs) -> Result<(Vec<f64>, DType)> {
    let mut t = args.tensor(0)?;
    if t.rank() == 0 {
        return Err(args.arg_error(
            0,
            "the logits must be a 1-D tensor (or 2-D, using its last row), got a rank-0 tensor",
        ));
    }
    while t.rank() > 1 {
        if t.shape()[0] == 0 {
            return Err(args.arg_error(
                0,
                format!("the logits of shape {:?} have no rows", t.shape()),
            ));
        }
        t = at_call(args, t.select(0, -1))?;
    }
    let values = t.to_vec_f64();
    if values.is_empty() {
        return Err(args.arg_error(0, "the logits are empty"));
    }
    let dtype = if t.dtype().is_float() {
        t.dtype()
    } else {
        DType::F32
    };
    Ok((values, dtype))
}

/// The index of the largest value (the first on ties; NaN never wins).
fn host_argmax(values: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &x) in values.iter().enumerate() {
        if x.is_nan() {
            continue;
        }
        if best.is_none_or(|b| x > values[b]) {
            best = Some(i);
        }
    }
    best
}

/// Softmax in f64; NaN counts as -inf. `None` when nothing has positive weight.
fn host_softmax(values: &[f64]) -> Option<Vec<f64>> {
    let max = values
        .iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return None;
    }
    if max == f64::INFINITY {
        // Infinite scores share all the mass.
        let hits: Vec<f64> = values
            .iter()
            .map(|&x| (x == f64::INFINITY) as u8 as f64)
            .collect();
        let n: f64 = hits.iter().sum();
        return Some(hits.into_iter().map(|h| h / n).collect());
    }
    let exps: Vec<f64> = values
        .iter()
        .map(|&x| if x.is_nan() { 0.0 } else { (x - max).exp() })
        .collect();
    let total: f64 = exps.iter().sum();
    Some(exps.into_iter().map(|e| e / total).collect())
}

/// Indices sorted by value, largest first (stable: lower ids first on ties; NaN last).
fn order_desc(values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (values[a], values[b]);
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => y.total_cmp(&x),
        }
    });
    order
}

/// `values` with all but the `k` largest set to -inf.
fn keep_top_k(values: &[f64], k: usize) -> Vec<f64> {
    if k >= values.len() {
        return values.to_vec();
    }
    let mut out = vec![f64::NEG_INFINITY; values.len()];
    for &i in order_desc(values).iter().take(k) {
        out[i] = values[i];
    }
    out
}

/// `values` with everything outside the nucleus of probability `p` set to -inf. `None` when
/// every value is -inf.
fn keep_top_p(values: &[f64], p: f64) -> Option<Vec<f64>> {
    let probs = host_softmax(values)?;
    if p >= 1.0 {
        return Some(values.to_vec());
    }
    let mut out = vec![f64::NEG_INFINITY; values.len()];
    let mut mass = 0.0;
    for i in order_desc(&probs) {
        out[i] = values[i];
        mass += probs[i];
        if mass >= p {
            break;
        }
    }
    Some(out)
}

/// Draws an index with probability proportional to `probs` (which sum to 1).
fn draw(probs: &[f64], u: f64) -> usize {
    let mut cumulative = 0.0;
    let mut last_positive = 0;
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            cumulative += p;
            last_positive = i;
            if u < cumulative {
                return i;
            }
        }
    }
    // Rounding left the total just below u: the last candidate takes the remainder.
    last_positive
}

fn all_masked(args: &CallArgs) -> crate::error::RuntimeError {
    args.error("every logit is -inf or NaN: there is nothing to sample")
}

/// Softmax of `scores` then one draw with `rng`.
fn sample_scores(args: &CallArgs, scores: &[f64], rng: &mut TensorRng) -> Result<Value> {
    let probs = host_softmax(scores).ok_or_else(|| all_masked(args))?;
    Ok(Value::Int(draw(&probs, rng.uniform()) as i64))
}

fn greedy(args: &CallArgs, values: &[f64]) -> Result<Value> {
    host_argmax(values)
        .map(|i| Value::Int(i as i64))
        .ok_or_else(|| all_masked(args))
}

fn temperature_sample(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    interp.note_token_sampled();
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let t = args.float(1)?;
    let (values, _) = logits_row(args)?;
    if t <= 0.0 {
        return greedy(args, &values);
    }
    let scaled: Vec<f64> = values.iter().map(|x| x / t).collect();
    sample_scores(args, &scaled, interp.rng())
}

fn row_tensor(args: &CallArgs, values: &[f64], dtype: DType) -> Result<Value> {
    at_call(args, Tensor::from_f64(values, &[values.len()], dtype)).map(Value::Tensor)
}

fn top_k(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let k = args.int(1)?;
    if k < 1 {
        return Err(args.arg_error(1, format!("k must be at least 1, got {k}")));
    }
    let (values, dtype) = logits_row(args)?;
    let kept = keep_top_k(&values, usize::try_from(k).unwrap_or(usize::MAX));
    row_tensor(args, &kept, dtype)
}

fn check_p(args: &CallArgs, p: f64) -> Result<()> {
    if p > 0.0 && p <= 1.0 {
        Ok(())
    } else {
        Err(args.error(format!("p must be in (0, 1], got {p}")))
    }
}

fn top_p(_: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    args.expect_named(&[])?;
    args.expect_count(2, 2)?;
    let p = args.float(1)?;
    check_p(args, p)?;
    let (values, dtype) = logits_row(args)?;
    let kept = keep_top_p(&values, p).ok_or_else(|| all_masked(args))?;
    row_tensor(args, &kept, dtype)
}

fn sample(interp: &mut Interpreter, args: &mut CallArgs) -> Result<Value> {
    interp.note_token_sampled();
    args.expect_named(&["temperature", "top_k", "top_p", "seed"])?;
    args.expect_count(1, 2)?;
    let temperature = args.opt_float(Some(1), "temperature")?.unwrap_or(1.0);
    if temperature.is_nan() || temperature < 0.0 {
        return Err(args.error(format!(
            "the temperature must be 0 or more, got {temperature}"
        )));
    }
    let k = args.opt_int(None, "top_k")?.unwrap_or(0);
    if k < 0 {
        return Err(args.error(format!("top_k must be 0 (off) or more, got {k}")));
    }
    let p = args.opt_float(None, "top_p")?.unwrap_or(1.0);
    check_p(args, p)?;
    let seed = args.opt_int(None, "seed")?;
    let (values, _) = logits_row(args)?;
    if temperature == 0.0 {
        return greedy(args, &values);
    }
    let mut scores: Vec<f64> = values.iter().map(|x| x / temperature).collect();
    if k > 0 {
        scores = keep_top_k(&scores, usize::try_from(k).unwrap_or(usize::MAX));
    }
    if p < 1.0 {
        scores = keep_top_p(&scores, p).ok_or_else(|| all_masked(args))?;
    }
    match seed {
        Some(s) => {
            let mut rng = TensorRng::seed_from_u64(s as u64);
            sample_scores(args, &scores, &mut rng)
        }
        None => sample_scores(args, &scores, interp.rng()),
    }
}
