//! Gradient clipping by global norm, as PyTorch's `clip_grad_norm_`.

/// Euclidean norm of the whole gradient block, accumulated in f64 over eight interleaved
/// partial sums (a fixed order, so the result does not depend on the CPU or thread count).
#[multiversion::multiversion(targets = "simd")]
pub fn grad_norm(grads: &[f32]) -> f64 {
    const LANES: usize = 8;
    let mut acc = [0.0f64; LANES];
    let chunks = grads.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            acc[k] += c[k] as f64 * c[k] as f64;
        }
    }
    let s: f64 = acc.iter().sum::<f64>() + tail.iter().map(|&g| g as f64 * g as f64).sum::<f64>();
    s.sqrt()
}

/// `grads *= c`.
#[multiversion::multiversion(targets = "simd")]
fn scale(grads: &mut [f32], c: f32) {
    grads.iter_mut().for_each(|g| *g *= c);
}

/// Scales `grads` so that their global norm is at most `max_norm` and returns the norm before
/// clipping. As PyTorch: the factor is `max_norm / (norm + 1e-6)`, applied only when below 1.
/// A non-finite norm is returned unchanged and the gradients are left alone (the caller stops).
pub fn clip_grad_norm(grads: &mut [f32], max_norm: f64) -> f64 {
    let norm = grad_norm(grads);
    if norm.is_finite() {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            scale(grads, coef as f32);
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_to_the_requested_norm_and_leaves_small_gradients() {
        let mut g = [3.0, 4.0];
        let n = clip_grad_norm(&mut g, 1.0);
        assert_eq!(n, 5.0);
        assert!((grad_norm(&g) - 1.0).abs() < 1e-6);
        let mut small = [0.3, 0.4];
        clip_grad_norm(&mut small, 1.0);
        assert_eq!(small, [0.3, 0.4]);
        let mut bad = [f32::NAN, 1.0];
        assert!(clip_grad_norm(&mut bad, 1.0).is_nan());
    }
}
