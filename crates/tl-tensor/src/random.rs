//! Seeded random numbers for tensors. One generator type, [`TensorRng`], so that a program's
//! random tensors are reproducible from its seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded random generator (ChaCha8).
#[derive(Debug, Clone)]
pub struct TensorRng(ChaCha8Rng);

impl TensorRng {
    /// A generator whose whole stream is determined by `seed`.
    pub fn seed_from_u64(seed: u64) -> TensorRng {
        TensorRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A uniform sample in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// A standard normal sample.
    pub fn normal(&mut self) -> f64 {
        self.0.sample(rand_distr::StandardNormal)
    }

    /// A uniform integer in `[low, high)`; `low` when the range is empty.
    pub fn int_in(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            low
        } else {
            self.0.random_range(low..high)
        }
    }

    /// The underlying generator, for sampling with `rand`'s own API.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.0
    }
}
