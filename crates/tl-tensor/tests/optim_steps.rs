//! Optimizer steps and learning-rate schedules against PyTorch 2 (CPU, float64), whose results
//! are quoted below. The problem: parameters p0 = [0.5, -1.2, 2.0], loss sum(p^2 + c p) with
//! c = [0.3, -0.7, 1.1], five steps; the gradient 2p + c is taken with the autograd of this
//! crate at every step. Our parameters are float32, so the tolerance is 2e-6 absolute (the
//! f32 rounding of five updates of values of order 1).
//! The script that produced the numbers:
//! `p = torch.tensor([0.5, -1.2, 2.0], requires_grad=True); opt = torch.optim.X([p], ...)`,
//! then 5 times `opt.zero_grad(); (p*p + c*p).sum().backward(); opt.step()`.

use tl_tensor::autograd::gradients;
use tl_tensor::optim::{Optimizer, OptimizerKind, Schedule};
use tl_tensor::{BinaryOp, ReduceOp, Tensor};

fn run(kind: OptimizerKind, lr: f64) -> Vec<f64> {
    let c = Tensor::from_f32(vec![0.3, -0.7, 1.1], &[3]).unwrap();
    let mut p = Tensor::from_f32(vec![0.5, -1.2, 2.0], &[3]).unwrap();
    let mut opt = Optimizer::new(kind, lr);
    for _ in 0..5 {
        let leaf = p.requires_grad().unwrap();
        let loss = leaf
            .binary(BinaryOp::Mul, &leaf)
            .unwrap()
            .binary(BinaryOp::Add, &leaf.binary(BinaryOp::Mul, &c).unwrap())
            .unwrap()
            .reduce(ReduceOp::Sum, None, false)
            .unwrap();
        let g = gradients(&loss, &[&leaf]).unwrap();
        p = opt.step(&[leaf], &g, lr).unwrap().remove(0);
        assert!(!p.is_tracked());
    }
    assert_eq!(opt.steps(), 5);
    p.to_vec_f64()
}

fn close(name: &str, got: &[f64], torch: &[f64]) {
    for (g, t) in got.iter().zip(torch) {
        assert!(
            (g - t).abs() <= 2e-6,
            "{name}: got {got:?}, PyTorch {torch:?}"
        );
    }
}

fn sgd(momentum: f64, dampening: f64, weight_decay: f64, nesterov: bool) -> OptimizerKind {
    OptimizerKind::Sgd {
        momentum,
        dampening,
        weight_decay,
        nesterov,
    }
}

#[test]
fn sgd_matches_pytorch() {
    close(
        "sgd",
        &run(sgd(0.0, 0.0, 0.0, false), 0.1),
        &[0.062992, -0.157904, 0.285584],
    );
    close(
        "sgd momentum 0.9, dampening 0.1, weight_decay 0.01",
        &run(sgd(0.9, 0.1, 0.01, false), 0.1),
        &[-0.4981871804, 1.1803513451, -1.9162592824],
    );
    close(
        "sgd nesterov",
        &run(sgd(0.9, 0.0, 0.0, true), 0.1),
        &[-0.4202164275, 0.9943622502, -1.610079831],
    );
}

#[test]
fn adam_and_adamw_match_pytorch() {
    let adam = |beta1, beta2, eps, weight_decay| OptimizerKind::Adam {
        beta1,
        beta2,
        eps,
        weight_decay,
    };
    let adamw = |beta1, beta2, eps, weight_decay| OptimizerKind::AdamW {
        beta1,
        beta2,
        eps,
        weight_decay,
    };
    close(
        "adam defaults",
        &run(adam(0.9, 0.999, 1e-8, 0.0), 0.1),
        &[0.0166660773, -0.7041634948, 1.5021705681],
    );
    close(
        "adam betas (0.8, 0.99), eps 1e-6, weight_decay 0.1",
        &run(adam(0.8, 0.99, 1e-6, 0.1), 0.05),
        &[0.2546371354, -0.9516198567, 1.7509352745],
    );
    close(
        "adamw defaults (weight_decay 0.01)",
        &run(adamw(0.9, 0.999, 1e-8, 0.01), 0.1),
        &[0.0152811545, -0.6992345694, 1.493238919],
    );
    close(
        "adamw weight_decay 0.5",
        &run(adamw(0.9, 0.999, 1e-8, 0.5), 0.05),
        &[0.2062644919, -0.8209647417, 1.5254119064],
    );
}

#[test]
fn parameters_without_a_gradient_are_left_alone() {
    let p = Tensor::from_f32(vec![1.5, -2.5], &[2]).unwrap();
    let mut opt = Optimizer::new(
        OptimizerKind::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        },
        0.1,
    );
    let out = opt.step(std::slice::from_ref(&p), &[None], 0.1).unwrap();
    assert_eq!(out[0].to_vec_f64(), vec![1.5, -2.5]);
}

#[test]
fn schedules_match_pytorch() {
    // StepLR(step_size=3, gamma=0.5) from lr 1.0, steps 0..8.
    let step = Schedule::Step {
        step_size: 3,
        gamma: 0.5,
    };
    let got: Vec<f64> = (0..8).map(|s| step.lr(1.0, s)).collect();
    assert_eq!(got, vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]);
    // CosineAnnealingLR(T_max=6, eta_min=0.1) from lr 1.0: no warmup, 6 steps to the minimum.
    let cosine = Schedule::Cosine {
        warmup: 0,
        total: 6,
        min_lr: 0.1,
    };
    let torch = [1.0, 0.939711431703, 0.775, 0.55, 0.325, 0.160288568297, 0.1];
    for (s, t) in torch.iter().enumerate() {
        assert!((cosine.lr(1.0, s) - t).abs() < 1e-9, "cosine step {s}");
    }
    // Warmup: linear over 4 steps, then the base rate; with cosine it anneals after warmup.
    let warm = Schedule::Warmup { warmup: 4 };
    let got: Vec<f64> = (0..6).map(|s| warm.lr(2.0, s)).collect();
    assert_eq!(got, vec![0.5, 1.0, 1.5, 2.0, 2.0, 2.0]);
    let wc = Schedule::Cosine {
        warmup: 2,
        total: 8,
        min_lr: 0.1,
    };
    assert_eq!(wc.lr(1.0, 0), 0.5);
    assert_eq!(wc.lr(1.0, 1), 1.0);
    for (s, t) in torch.iter().enumerate() {
        assert!(
            (wc.lr(1.0, s + 2) - t).abs() < 1e-9,
            "warmup + cosine step {}",
            s + 2
        );
    }
}
