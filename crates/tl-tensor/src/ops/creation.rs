//! Creation of new tensors: constants, ranges, identity matrices and random tensors. New
//! tensors live on the current default device ([`crate::device::default_device`]): constants
//! are filled there, the others are made on the host (one random stream for every device) and
//! copied over.

use crate::backend::Backend;
use crate::bail;
use crate::cpu::CPU;
use crate::device::{Device, default_device, device_backend};
use crate::dtype::DType;
use crate::error::Result;
use crate::random::TensorRng;
use crate::stats;
use crate::storage::CpuStorage;
use crate::tensor::Tensor;
use half::{bf16, f16};
use rand::Rng;

/// Host values (f32 precision is what every float dtype needs) stored as `dtype`, with
/// uniform samples kept below 1 after rounding to a half type.
fn from_f32_values(values: Vec<f32>, shape: &[usize], dtype: DType, below_one: bool) -> Tensor {
    let storage = match dtype {
        DType::F32 => CpuStorage::F32(values.into()),
        DType::F16 => {
            // The largest f16 below 1 is 1 - 2^-11.
            let top = f16::from_f32(1.0 - 1.0 / 2048.0);
            CpuStorage::F16(
                values
                    .into_iter()
                    .map(|v| {
                        let h = f16::from_f32(v);
                        if below_one && h >= f16::ONE { top } else { h }
                    })
                    .collect(),
            )
        }
        DType::BF16 => {
            // The largest bf16 below 1 is 1 - 2^-8.
            let top = bf16::from_f32(1.0 - 1.0 / 256.0);
            CpuStorage::BF16(
                values
                    .into_iter()
                    .map(|v| {
                        let h = bf16::from_f32(v);
                        if below_one && h >= bf16::ONE { top } else { h }
                    })
                    .collect(),
            )
        }
        DType::I64 => CpuStorage::I64(values.into_iter().map(|v| v as i64).collect()),
        DType::Bool => CpuStorage::Bool(values.into_iter().map(|v| v != 0.0).collect()),
        // Random quantized tensors: sample in f32, then pack (the last dim must be whole blocks).
        q => {
            let t = Tensor::from_cpu_storage(CpuStorage::F32(values.into()), shape)
                .expect("one value per element was generated");
            return t
                .cast(q)
                .expect("random quantized tensors need whole blocks in the last dim");
        }
    };
    Tensor::from_cpu_storage(storage, shape).expect("one value per element was generated")
}

/// `t` (made on the host) moved to the default device. Creation ops have no error path; a
/// device that cannot take a new tensor (out of memory, lost) ends the program with its message.
fn on_default_device(t: Tensor) -> Tensor {
    match t.to_default_device() {
        Ok(t) => t,
        Err(e) => panic!("creating a tensor on {}: {e}", default_device()),
    }
}

impl Tensor {
    /// A tensor of `shape` with every element `value` (converted to `dtype`). Panics where
    /// [`Tensor::try_full`] fails.
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        match Tensor::try_full(shape, value, dtype) {
            Ok(t) => t,
            Err(e) => panic!("creating a tensor on {}: {e}", default_device()),
        }
    }

    /// [`Tensor::full`], failing (instead of aborting the process) when the shape's size
    /// overflows or its memory cannot be had ([`check_creatable`]), or the device refuses.
    pub fn try_full(shape: &[usize], value: f64, dtype: DType) -> Result<Tensor> {
        stats::count_op();
        match default_device() {
            Device::Cpu => {
                check_creatable(shape, dtype)?;
                CPU.full(shape, value, dtype)
            }
            d => device_backend(d).and_then(|b| b.full(shape, value, dtype)),
        }
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(shape, 0.0, dtype)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(shape, 1.0, dtype)
    }

    /// `start, start + step, ...` up to but excluding `end` (1-D). Fails when `step` is 0 or a
    /// bound is not finite.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 {
            bail!("arange: step must not be zero");
        }
        if !(start.is_finite() && end.is_finite() && step.is_finite()) {
            bail!("arange: start {start}, end {end} and step {step} must be finite");
        }
        let n = ((end - start) / step).ceil().max(0.0);
        if n > (1u64 << 40) as f64 {
            bail!("arange: {n} elements from {start} to {end} by {step} are too many");
        }
        let values: Vec<f64> = (0..n as usize).map(|i| start + i as f64 * step).collect();
        stats::count_op();
        Tensor::from_f64(&values, &[values.len()], dtype)?.to_default_device()
    }

    /// The `n` x `n` identity matrix.
    pub fn eye(n: usize, dtype: DType) -> Tensor {
        let mut values = vec![0.0f32; n * n];
        for i in 0..n {
            values[i * n + i] = 1.0;
        }
        stats::count_op();
        on_default_device(from_f32_values(values, &[n, n], dtype, false))
    }

    /// Uniform samples in `[0, 1)`, drawn in f32 and stored as `dtype` (int tensors get the
    /// truncation, zeros; bool tensors get `true` for non-zero samples).
    pub fn rand(shape: &[usize], dtype: DType, rng: &mut TensorRng) -> Tensor {
        match Tensor::try_rand(shape, dtype, rng) {
            Ok(t) => t,
            Err(e) => panic!("creating a tensor on {}: {e}", default_device()),
        }
    }

    /// [`Tensor::rand`], failing where [`Tensor::try_full`] would.
    pub fn try_rand(shape: &[usize], dtype: DType, rng: &mut TensorRng) -> Result<Tensor> {
        random(shape, dtype, true, || rng.rng().random::<f32>())
    }

    /// Standard normal samples, drawn in f32 and stored as `dtype`.
    pub fn randn(shape: &[usize], dtype: DType, rng: &mut TensorRng) -> Tensor {
        match Tensor::try_randn(shape, dtype, rng) {
            Ok(t) => t,
            Err(e) => panic!("creating a tensor on {}: {e}", default_device()),
        }
    }

    /// [`Tensor::randn`], failing where [`Tensor::try_full`] would.
    pub fn try_randn(shape: &[usize], dtype: DType, rng: &mut TensorRng) -> Result<Tensor> {
        random(shape, dtype, false, || {
            rng.rng().sample::<f32, _>(rand_distr::StandardNormal)
        })
    }
}

/// A tensor of `shape` filled with `sample()` in f32 on the host (checked first: the f32
/// samples and the `dtype` result must both fit), stored as `dtype` and moved to the default
/// device.
fn random(
    shape: &[usize],
    dtype: DType,
    below_one: bool,
    mut sample: impl FnMut() -> f32,
) -> Result<Tensor> {
    check_creatable(shape, DType::F32)?;
    check_creatable(shape, dtype)?;
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| sample()).collect();
    stats::count_op();
    from_f32_values(values, shape, dtype, below_one).to_default_device()
}

/// Fails when a new host tensor of `shape` and `dtype` cannot be made: its element count or
/// byte size overflows, or the memory cannot be reserved (asked of the allocator and given
/// back at once, so that a shape far beyond the machine's memory is an error naming the shape
/// and its size instead of the allocator aborting the process).
pub fn check_creatable(shape: &[usize], dtype: DType) -> Result<()> {
    let too_big = || {
        crate::error::TensorError(format!(
            "a {shape:?} {} tensor has more elements than memory can address",
            dtype.name()
        ))
    };
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(too_big)?;
    let bytes = match dtype.ggml_type() {
        Some(k) if k.is_quantized() => n.div_ceil(k.block_size()).checked_mul(k.block_bytes()),
        _ => n.checked_mul(dtype.size_in_bytes()),
    }
    .ok_or_else(too_big)?;
    if bytes > isize::MAX as usize {
        return Err(too_big());
    }
    // Small tensors are always fine; only a large request is worth asking the allocator about.
    if bytes >= 1 << 30 && Vec::<u8>::new().try_reserve_exact(bytes).is_err() {
        bail!(
            "a {shape:?} {} tensor needs {:.1} GB, which this machine's memory cannot hold",
            dtype.name(),
            bytes as f64 / 1e9
        );
    }
    Ok(())
}
