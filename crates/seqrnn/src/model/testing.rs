//! Helpers shared by the models' unit tests.

/// How a finite-difference check runs: the step `eps`, the tolerance
/// `|fd − g| ≤ rel · max|g| + abs`, and every `stride`-th parameter checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FdCheck {
    pub eps: f32,
    pub rel: f32,
    pub abs: f32,
    pub stride: usize,
}

impl FdCheck {
    /// Step `1e-2`, every parameter, tolerance `rel · max|g| + abs`.
    pub fn new(rel: f32, abs: f32) -> Self {
        FdCheck {
            eps: 1e-2,
            rel,
            abs,
            stride: 1,
        }
    }
}

/// Checks the gradient `grads` of `loss` at `params` against central finite differences
/// `(loss(p + eps·e_i) − loss(p − eps·e_i)) / 2·eps` along the checked parameters `i`, expecting
/// zero where `frozen(i)` (parameters the backward pass keeps fixed, e.g. padding rows).
/// `params` is restored after each probe. Panics with `what` and the parameter on a mismatch;
/// returns `max|g|`.
pub(crate) fn check_gradients(
    what: &str,
    params: &mut [f32],
    grads: &[f32],
    check: FdCheck,
    frozen: impl Fn(usize) -> bool,
    mut loss: impl FnMut(&[f32]) -> f64,
) -> f32 {
    let gmax = grads.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let eps = check.eps;
    for i in (0..params.len()).step_by(check.stride) {
        let keep = params[i];
        params[i] = keep + eps;
        let lp = loss(params);
        params[i] = keep - eps;
        let lm = loss(params);
        params[i] = keep;
        let fd = ((lp - lm) / (2.0 * eps as f64)) as f32;
        let want = if frozen(i) { 0.0 } else { fd };
        assert!(
            (want - grads[i]).abs() <= check.rel * gmax + check.abs,
            "{what} param {i}: finite difference {fd}, backward {}",
            grads[i]
        );
    }
    gmax
}
