//! Plain stochastic gradient descent.

/// `params -= lr · grads`.
///
/// - `params[P]`: updated. `grads[P]`: read.
#[multiversion::multiversion(targets = "simd")]
pub fn sgd_step(params: &mut [f32], grads: &[f32], lr: f32) {
    params.iter_mut().zip(grads).for_each(|(p, g)| *p -= lr * g);
}

#[cfg(test)]
mod tests {
    #[test]
    fn step_moves_against_the_gradient() {
        let mut p = [1.0, -2.0];
        super::sgd_step(&mut p, &[0.5, -1.0], 0.1);
        assert_eq!(p, [0.95, -1.9]);
    }
}
