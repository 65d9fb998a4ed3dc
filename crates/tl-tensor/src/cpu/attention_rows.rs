//! The two products of attention for a few query rows (a decode step: the query heads that
//! share one kv head) read straight from the KV cache with AVX-512, instead of through `gemm`,
//! which packs all of K (or V) into its own layout on every call: for 3 to 8 rows that packing
//! cost more than the products (about a fifth of SmolLM2-135M's decode step at 200 positions).
//! Exact f32 arithmetic like `gemm`; only the summation order differs.

/// Query rows up to which [`scores`] and [`weighted_values`] replace `gemm`.
pub(crate) const MAX_ROWS: usize = 16;

/// Where the operands of one block of query heads lie: row `i` of q at `q + i * q_rs`, key
/// `j` at `k + j * k_rs`, value `j` at `v + j * v_rs`, each with unit stride inside the row.
pub(crate) struct RowsView<'a> {
    pub q: &'a [f32],
    pub q_rs: usize,
    pub k: &'a [f32],
    pub k_rs: usize,
    pub v: &'a [f32],
    pub v_rs: usize,
    pub rows: usize,
    pub keys: usize,
    pub d: usize,
    pub dv: usize,
}

impl RowsView<'_> {
    /// True when this CPU and these sizes take the direct kernels: AVX-512 F, a few rows, head
    /// sizes of whole registers (dv of whole groups of four), and every row in bounds.
    pub fn direct(&self) -> bool {
        let fits = |len: usize, n: usize, rs: usize, w: usize| {
            n == 0
                || (n - 1)
                    .checked_mul(rs)
                    .and_then(|o| o.checked_add(w))
                    .is_some_and(|end| end <= len)
        };
        available()
            && self.rows <= MAX_ROWS
            && self.d.is_multiple_of(16)
            && self.d > 0
            && self.dv.is_multiple_of(64)
            && fits(self.q.len(), self.rows, self.q_rs, self.d)
            && fits(self.k.len(), self.keys, self.k_rs, self.d)
            && fits(self.v.len(), self.keys, self.v_rs, self.dv)
    }

    /// `out[i * keys + j] = q_i . k_j` (`out` holds rows x keys). Only when [`Self::direct`].
    pub fn scores(&self, out: &mut [f32]) {
        assert!(self.direct() && out.len() >= self.rows * self.keys);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `direct` checked the CPU and that every row read lies in its slice.
        unsafe {
            scores_avx512(self, out)
        }
    }

    /// `out[i * dv ..] = sum_j p[i * keys + j] v_j` (`out` holds rows x dv). Only when
    /// [`Self::direct`].
    pub fn weighted_values(&self, p: &[f32], out: &mut [f32]) {
        assert!(self.direct() && p.len() >= self.rows * self.keys);
        assert!(out.len() >= self.rows * self.dv);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `scores`; `p` and `out` hold the rows asserted above.
        unsafe {
            for first in (0..self.rows).step_by(4) {
                match self.rows - first {
                    1 => weighted_values_avx512::<1>(self, first, p, out),
                    2 => weighted_values_avx512::<2>(self, first, p, out),
                    3 => weighted_values_avx512::<3>(self, first, p, out),
                    _ => weighted_values_avx512::<4>(self, first, p, out),
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (p, out);
    }
}

/// True when the CPU has AVX-512 F (checked once; `TL_CPU_NO_AVX512` turns it off).
fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAVE.get_or_init(|| {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("fma")
                && !crate::quant::avx512::turned_off()
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn scores_avx512(a: &RowsView, out: &mut [f32]) {
    use std::arch::x86_64::*;
    unsafe {
        let (q, k) = (a.q.as_ptr(), a.k.as_ptr());
        for j in 0..a.keys {
            let kj = k.add(j * a.k_rs);
            for i in 0..a.rows {
                let qi = q.add(i * a.q_rs);
                let mut acc = _mm512_mul_ps(_mm512_loadu_ps(qi), _mm512_loadu_ps(kj));
                let mut t = 16;
                while t < a.d {
                    acc = _mm512_fmadd_ps(
                        _mm512_loadu_ps(qi.add(t)),
                        _mm512_loadu_ps(kj.add(t)),
                        acc,
                    );
                    t += 16;
                }
                *out.get_unchecked_mut(i * a.keys + j) = _mm512_reduce_add_ps(acc);
            }
        }
    }
}

/// Rows `first .. first + R` of the weighted sum, 64 columns (four registers per row) at a
/// time, every value row read once per group of rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn weighted_values_avx512<const R: usize>(
    a: &RowsView,
    first: usize,
    p: &[f32],
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    unsafe {
        let v = a.v.as_ptr();
        let pp = p.as_ptr().add(first * a.keys);
        for c in (0..a.dv).step_by(64) {
            let mut acc = [[_mm512_setzero_ps(); 4]; R];
            for j in 0..a.keys {
                let vj = v.add(j * a.v_rs + c);
                let vv: [__m512; 4] = std::array::from_fn(|z| _mm512_loadu_ps(vj.add(16 * z)));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let w = _mm512_set1_ps(*pp.add(r * a.keys + j));
                    for (z, acc_rz) in acc_r.iter_mut().enumerate() {
                        *acc_rz = _mm512_fmadd_ps(w, vv[z], *acc_rz);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let o = out.as_mut_ptr().add((first + r) * a.dv + c);
                for (z, acc_rz) in acc_r.iter().enumerate() {
                    _mm512_storeu_ps(o.add(16 * z), *acc_rz);
                }
            }
        }
    }
}
