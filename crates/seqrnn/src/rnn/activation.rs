//! Scalar activation functions shared by the gate kernels.

/// Logistic sigmoid `1 / (1 + e^{-x})`, exact to f32 rounding and safe for any finite input.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Hyperbolic tangent.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    x.tanh()
}
