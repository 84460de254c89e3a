//! Scalar activation functions shared by the gate kernels and the softmax.
//!
//! `exp` is written without branches or library calls so that loops over it vectorise: range
//! reduction `x = k·ln2 + r` with `|r| ≤ ln2/2`, a degree-6 Taylor polynomial for `e^r` (relative
//! error below 2e-7, about one f32 ulp), and `2^k` assembled from its exponent bits. `sigmoid` and
//! `tanh` are built on it. Against libm they differ by at most a few ulps (tested below).

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// 1.5·2^23: adding and subtracting it rounds an f32 of magnitude < 2^22 to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// `e^x` for f32, vectorisable. Inputs are clamped to `[−87.3, 88.3]`, so the result is finite
/// and never subnormal (`e^−87.3 ≈ 1.2e−38`); for the activations built on it that is exact to
/// f32 precision.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.3);
    let t = x * LOG2E + ROUND;
    let k = t - ROUND;
    let ki = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((ki + 127) << 23) as u32);
    p * scale
}

/// Logistic sigmoid `1 / (1 + e^{−x})`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Hyperbolic tangent, `1 − 2 / (e^{2x} + 1)`: absolute error below 3e−7 everywhere.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulps_of_libm() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.3 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 2.5e-7, "max relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1.3e-38);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn sigmoid_and_tanh_match_f64() {
        let mut x = -30.0f32;
        while x < 30.0 {
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((sigmoid(x) as f64 - s).abs() < 2e-7, "sigmoid({x})");
            assert!(
                (tanh(x) as f64 - (x as f64).tanh()).abs() < 3e-7,
                "tanh({x})"
            );
            x += 0.0093;
        }
        assert_eq!(sigmoid(100.0), 1.0);
        assert_eq!(sigmoid(-100.0), 1.0 / (1.0 + exp(100.0)));
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
    }
}

/// Eight-lane AVX2 forms of [`exp`], [`sigmoid`] and [`tanh`], operation for operation the same
/// as the scalar ones (no fused multiply-adds), so they give bit-identical results.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::{LN2_HI, LN2_LO, LOG2E, ROUND};

    /// `e^x` per lane, as [`super::exp`].
    #[target_feature(enable = "avx2")]
    #[inline]
    pub fn exp8(x: __m256) -> __m256 {
        // max/min return their second operand for NaN lanes, so NaN stays NaN as in `clamp`.
        let x = _mm256_min_ps(
            _mm256_set1_ps(88.3),
            _mm256_max_ps(_mm256_set1_ps(-87.3), x),
        );
        let t = _mm256_add_ps(
            _mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
            _mm256_set1_ps(ROUND),
        );
        let k = _mm256_sub_ps(t, _mm256_set1_ps(ROUND));
        let ki = _mm256_sub_epi32(
            _mm256_castps_si256(t),
            _mm256_set1_epi32(ROUND.to_bits() as i32),
        );
        let r = _mm256_sub_ps(
            _mm256_sub_ps(x, _mm256_mul_ps(k, _mm256_set1_ps(LN2_HI))),
            _mm256_mul_ps(k, _mm256_set1_ps(LN2_LO)),
        );
        let c = |v: f32| _mm256_set1_ps(v);
        let mut p = _mm256_add_ps(c(1.0 / 120.0), _mm256_mul_ps(r, c(1.0 / 720.0)));
        p = _mm256_add_ps(c(1.0 / 24.0), _mm256_mul_ps(r, p));
        p = _mm256_add_ps(c(1.0 / 6.0), _mm256_mul_ps(r, p));
        p = _mm256_add_ps(c(0.5), _mm256_mul_ps(r, p));
        p = _mm256_add_ps(c(1.0), _mm256_mul_ps(r, p));
        p = _mm256_add_ps(c(1.0), _mm256_mul_ps(r, p));
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            ki,
            _mm256_set1_epi32(127),
        )));
        _mm256_mul_ps(p, scale)
    }

    /// Logistic sigmoid per lane, as [`super::sigmoid`].
    #[target_feature(enable = "avx2")]
    #[inline]
    pub fn sigmoid8(x: __m256) -> __m256 {
        let neg = _mm256_xor_ps(x, _mm256_set1_ps(-0.0));
        let one = _mm256_set1_ps(1.0);
        _mm256_div_ps(one, _mm256_add_ps(one, exp8(neg)))
    }

    /// Hyperbolic tangent per lane, as [`super::tanh`].
    #[target_feature(enable = "avx2")]
    #[inline]
    pub fn tanh8(x: __m256) -> __m256 {
        let one = _mm256_set1_ps(1.0);
        let e = exp8(_mm256_mul_ps(_mm256_set1_ps(2.0), x));
        _mm256_sub_ps(
            one,
            _mm256_div_ps(_mm256_set1_ps(2.0), _mm256_add_ps(e, one)),
        )
    }
}
