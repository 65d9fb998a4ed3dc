//! Optimizers (SGD with momentum and Nesterov, Adam, AdamW) and learning-rate schedules,
//! with PyTorch's update rules, defaults and names. Updates are `Tensor` ops, so they run on
//! the parameters' backend; they record nothing for autograd.

use crate::autograd::no_grad;
use crate::error::Result;
use crate::ops::{BinaryOp, UnaryOp};
use crate::tensor::Tensor;

/// Which update rule, with its hyper-parameters (PyTorch's names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub enum OptimizerKind {
    /// torch.optim.SGD: lr 1e-3, momentum 0, dampening 0, weight_decay 0, nesterov false.
    Sgd {
        momentum: f64,
        dampening: f64,
        weight_decay: f64,
        nesterov: bool,
    },
    /// torch.optim.Adam: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0 (added to the
    /// gradient).
    Adam {
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
    /// torch.optim.AdamW: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01 (decoupled:
    /// the parameter shrinks by lr * weight_decay before the Adam step).
    AdamW {
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
}

/// An optimizer and its per-parameter state. Parameters are identified by position: pass
/// them in the same order at every step.
pub struct Optimizer {
    pub kind: OptimizerKind,
    /// The base learning rate (a schedule scales it per step).
    pub lr: f64,
    step: u64,
    /// SGD: momentum buffers; Adam/AdamW: first moments.
    first: Vec<Option<Tensor>>,
    /// Adam/AdamW: second moments.
    second: Vec<Option<Tensor>>,
}

fn scale(t: &Tensor, v: f64) -> Result<Tensor> {
    t.binary(BinaryOp::Mul, &Tensor::scalar(v, t.dtype()))
}

fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.binary(BinaryOp::Add, b)
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, lr: f64) -> Optimizer {
        Optimizer {
            kind,
            lr,
            step: 0,
            first: Vec::new(),
            second: Vec::new(),
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// One update of `params` given their gradients (`None`: the loss does not depend on
    /// that parameter; it is left as it is, as PyTorch skips parameters without a gradient),
    /// with learning rate `lr`. Returns the new parameters (untracked).
    pub fn step(
        &mut self,
        params: &[Tensor],
        grads: &[Option<Tensor>],
        lr: f64,
    ) -> Result<Vec<Tensor>> {
        let _off = no_grad();
        self.step += 1;
        let t = self.step as f64;
        self.first.resize(params.len(), None);
        self.second.resize(params.len(), None);
        let mut out = Vec::with_capacity(params.len());
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let p = p.detach();
            let Some(g) = g else {
                out.push(p);
                continue;
            };
            let g = g.detach().cast(p.dtype())?;
            let new = match self.kind {
                OptimizerKind::Sgd {
                    momentum,
                    dampening,
                    weight_decay,
                    nesterov,
                } => {
                    let mut d = g;
                    if weight_decay != 0.0 {
                        d = add(&d, &scale(&p, weight_decay)?)?;
                    }
                    if momentum != 0.0 {
                        let buf = match self.first[i].take() {
                            None => d.clone(),
                            Some(b) => add(&scale(&b, momentum)?, &scale(&d, 1.0 - dampening)?)?,
                        };
                        d = if nesterov {
                            add(&d, &scale(&buf, momentum)?)?
                        } else {
                            buf.clone()
                        };
                        self.first[i] = Some(buf);
                    }
                    p.binary(BinaryOp::Sub, &scale(&d, lr)?)?
                }
                OptimizerKind::Adam {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                }
                | OptimizerKind::AdamW {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                } => {
                    let decoupled = matches!(self.kind, OptimizerKind::AdamW { .. });
                    let mut g = g;
                    let mut p = p;
                    if weight_decay != 0.0 {
                        if decoupled {
                            p = scale(&p, 1.0 - lr * weight_decay)?;
                        } else {
                            g = add(&g, &scale(&p, weight_decay)?)?;
                        }
                    }
                    let m = match self.first[i].take() {
                        None => scale(&g, 1.0 - beta1)?,
                        Some(m) => add(&scale(&m, beta1)?, &scale(&g, 1.0 - beta1)?)?,
                    };
                    let g2 = g.binary(BinaryOp::Mul, &g)?;
                    let v = match self.second[i].take() {
                        None => scale(&g2, 1.0 - beta2)?,
                        Some(v) => add(&scale(&v, beta2)?, &scale(&g2, 1.0 - beta2)?)?,
                    };
                    let bc1 = 1.0 - beta1.powf(t);
                    let bc2 = 1.0 - beta2.powf(t);
                    // PyTorch: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
                    let denom = scale(&v.unary(UnaryOp::Sqrt)?, 1.0 / bc2.sqrt())?
                        .binary(BinaryOp::Add, &Tensor::scalar(eps, v.dtype()))?;
                    let update = scale(&m.binary(BinaryOp::Div, &denom)?, lr / bc1)?;
                    self.first[i] = Some(m);
                    self.second[i] = Some(v);
                    p.binary(BinaryOp::Sub, &update)?
                }
            };
            out.push(new.contiguous()?);
        }
        Ok(out)
    }
}

/// A learning-rate schedule: the factor applied to the base rate at each step (0-based).
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Constant,
    /// torch.optim.lr_scheduler.StepLR: lr * gamma^(step / step_size).
    Step {
        step_size: usize,
        gamma: f64,
    },
    /// Linear warmup over `warmup` steps (lr * (step + 1) / warmup), then cosine annealing
    /// from lr to `min_lr` over the remaining `total - warmup` steps
    /// (torch's CosineAnnealingLR with T_max = total - warmup).
    Cosine {
        warmup: usize,
        total: usize,
        min_lr: f64,
    },
    /// Linear warmup over `warmup` steps, then constant.
    Warmup {
        warmup: usize,
    },
}

impl Schedule {
    /// The learning rate at `step` (0-based) for base rate `lr`.
    pub fn lr(&self, lr: f64, step: usize) -> f64 {
        let warm = |w: usize| {
            if step < w {
                Some(lr * (step + 1) as f64 / w as f64)
            } else {
                None
            }
        };
        match *self {
            Schedule::Constant => lr,
            Schedule::Step { step_size, gamma } => {
                lr * gamma.powi((step / step_size.max(1)) as i32)
            }
            Schedule::Warmup { warmup } => warm(warmup).unwrap_or(lr),
            Schedule::Cosine {
                warmup,
                total,
                min_lr,
            } => warm(warmup).unwrap_or_else(|| {
                let span = total.saturating_sub(warmup).max(1) as f64;
                let done = (step - warmup) as f64;
                min_lr + (lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * done / span).cos())
            }),
        }
    }
}
