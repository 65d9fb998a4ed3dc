//! The `optimizer:` and `schedule:` settings of a `learn` block, read from their call syntax
//! (`adam(lr: 0.01, betas: [0.9, 0.999])`, `cosine(warmup: 10)`) into `tl_tensor::optim`.

use tl_tensor::optim::{OptimizerKind, Schedule as LrSchedule};

use crate::error::{Result, RuntimeError};
use crate::eval::learn::SpecCall;
use crate::value::Value;

pub(crate) struct Optimizer {
    inner: tl_tensor::optim::Optimizer,
}

impl Optimizer {
    /// `sgd(lr:, momentum:, dampening:, weight_decay:, nesterov:)`,
    /// `adam(lr:, betas:, beta1:, beta2:, eps:, weight_decay:)`, `adamw(...)` (same names).
    /// The first positional argument may give `lr`.
    pub fn from_call(call: &SpecCall) -> Result<Optimizer> {
        let lr = call.float(Some(0), "lr")?.unwrap_or(1e-3);
        if lr <= 0.0 {
            return Err(call.error("`lr` must be positive"));
        }
        let nonneg = |name: &str, default: f64| -> Result<f64> {
            let v = call.float(None, name)?.unwrap_or(default);
            if v < 0.0 {
                return Err(call.error(format!("`{name}` must be >= 0, got {v}")));
            }
            Ok(v)
        };
        let kind = match call.name.as_str() {
            "sgd" => {
                call.expect(
                    &["lr", "momentum", "dampening", "weight_decay", "nesterov"],
                    1,
                )?;
                let momentum = nonneg("momentum", 0.0)?;
                let dampening = nonneg("dampening", 0.0)?;
                let nesterov = call.bool("nesterov")?.unwrap_or(false);
                if nesterov && (momentum <= 0.0 || dampening != 0.0) {
                    return Err(call.error(
                        "Nesterov momentum needs a momentum > 0 and zero dampening (as in PyTorch)",
                    ));
                }
                OptimizerKind::Sgd {
                    momentum,
                    dampening,
                    weight_decay: nonneg("weight_decay", 0.0)?,
                    nesterov,
                }
            }
            "adam" | "adamw" => {
                call.expect(
                    &[
                        "lr",
                        "betas",
                        "beta1",
                        "beta2",
                        "eps",
                        "epsilon",
                        "weight_decay",
                    ],
                    1,
                )?;
                let (mut beta1, mut beta2) = (0.9, 0.999);
                if let Some((v, span)) = call
                    .named
                    .iter()
                    .find(|n| n.0 == "betas")
                    .map(|n| (&n.1, n.2))
                {
                    let pair = match v {
                        Value::List(items) if items.len() == 2 => {
                            let a = crate::convert::to_float(&items[0]);
                            let b = crate::convert::to_float(&items[1]);
                            a.zip(b)
                        }
                        _ => None,
                    };
                    let Some((a, b)) = pair else {
                        return Err(RuntimeError::new(
                            format!(
                                "{}: `betas` must be a list of two numbers, e.g. [0.9, 0.999]",
                                call.name
                            ),
                            span,
                        ));
                    };
                    (beta1, beta2) = (a, b);
                }
                beta1 = call.float(None, "beta1")?.unwrap_or(beta1);
                beta2 = call.float(None, "beta2")?.unwrap_or(beta2);
                for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
                    if !(0.0..1.0).contains(&b) {
                        return Err(call.error(format!("`{name}` must be in [0, 1), got {b}")));
                    }
                }
                // `epsilon` is the earlier interpreter's name for `eps`.
                let eps = match call.float(None, "epsilon")? {
                    Some(_) => nonneg("epsilon", 1e-8)?,
                    None => nonneg("eps", 1e-8)?,
                };
                if call.name == "adam" {
                    OptimizerKind::Adam {
                        beta1,
                        beta2,
                        eps,
                        weight_decay: nonneg("weight_decay", 0.0)?,
                    }
                } else {
                    OptimizerKind::AdamW {
                        beta1,
                        beta2,
                        eps,
                        weight_decay: nonneg("weight_decay", 0.01)?,
                    }
                }
            }
            other => {
                return Err(RuntimeError::new(
                    format!(
                        "learn: unknown optimizer `{other}` (the optimizers are sgd, adam and adamw)"
                    ),
                    call.span,
                ));
            }
        };
        Ok(Optimizer {
            inner: tl_tensor::optim::Optimizer::new(kind, lr),
        })
    }

    pub fn lr(&self) -> f64 {
        self.inner.lr
    }

    pub fn step(
        &mut self,
        params: &[tl_tensor::Tensor],
        grads: &[Option<tl_tensor::Tensor>],
        lr: f64,
    ) -> tl_tensor::Result<Vec<tl_tensor::Tensor>> {
        self.inner.step(params, grads, lr)
    }
}

pub(crate) struct Schedule;

impl Schedule {
    /// `constant()`, `step(step_size: N, gamma: 0.1)`, `warmup(epochs: N)` (also positional),
    /// `cosine(warmup: N = 0, min_lr: 0)`.
    pub fn from_call(call: &SpecCall, epochs: usize) -> Result<LrSchedule> {
        let count = |pos: Option<usize>, name: &str, default: Option<usize>| -> Result<usize> {
            match call.float(pos, name)? {
                Some(v) if v >= 0.0 && v.fract() == 0.0 => Ok(v as usize),
                Some(v) => {
                    Err(call.error(format!("`{name}` must be a whole number >= 0, got {v}")))
                }
                None => default.ok_or_else(|| call.error(format!("needs `{name}:`"))),
            }
        };
        match call.name.as_str() {
            "constant" => {
                call.expect(&[], 0)?;
                Ok(LrSchedule::Constant)
            }
            "step" => {
                call.expect(&["step_size", "gamma"], 1)?;
                let step_size = count(Some(0), "step_size", None)?;
                if step_size == 0 {
                    return Err(call.error("`step_size` must be at least 1"));
                }
                Ok(LrSchedule::Step {
                    step_size,
                    gamma: call.float(None, "gamma")?.unwrap_or(0.1),
                })
            }
            "warmup" => {
                call.expect(&["epochs"], 1)?;
                Ok(LrSchedule::Warmup {
                    warmup: count(Some(0), "epochs", None)?,
                })
            }
            "cosine" => {
                call.expect(&["warmup", "min_lr"], 0)?;
                Ok(LrSchedule::Cosine {
                    warmup: count(None, "warmup", Some(0))?,
                    total: epochs,
                    min_lr: call.float(None, "min_lr")?.unwrap_or(0.0),
                })
            }
            other => Err(RuntimeError::new(
                format!(
                    "learn: unknown schedule `{other}` (the schedules are constant, step, warmup and cosine)"
                ),
                call.span,
            )),
        }
    }
}
