//! A fully connected layer `y = x · Wᵀ + b` (PyTorch's `nn.Linear` layout), forward and
//! backward, used by the forecasting and classification heads.

use rand::RngExt;

use crate::dropout::SeqRng;
use crate::linalg::{matmul, matmul_rows, Accumulate, Mat, MatMut};

/// Forward: `y[N, O] = x[N, F] · W[O, F]ᵀ + b[O]`.
///
/// - `w[O, F]`, `b[O]`, `x[N, F]`: read. `y[N, O]`: written.
pub fn forward(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32], n: usize, f: usize, o: usize) {
    matmul(
        MatMut::new(y, n, o),
        Mat::new(x, n, f),
        Mat::new(w, o, f).t(),
        Accumulate::Overwrite,
    );
    for row in y.chunks_exact_mut(o) {
        row.iter_mut().zip(b).for_each(|(v, bb)| *v += bb);
    }
}

/// [`forward`] for inference, batch-invariant: a row's `y` is the same, to the bit, whatever the
/// other rows ([`matmul_rows`]).
pub fn forward_rows(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32], n: usize, f: usize, o: usize) {
    matmul_rows(
        MatMut::new(y, n, o),
        Mat::new(x, n, f),
        Mat::new(w, o, f).t(),
        Accumulate::Overwrite,
    );
    for row in y.chunks_exact_mut(o) {
        row.iter_mut().zip(b).for_each(|(v, bb)| *v += bb);
    }
}

/// Backward of [`forward`].
///
/// - `w[O, F]`, `x[N, F]`, `dy[N, O]`: read.
/// - `dw[O, F]`, `db[O]`: accumulated (`+=`).
/// - `dx[N, F]`: written (`∂L/∂x = dy · W`); pass an empty slice to skip it.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    w: &[f32],
    x: &[f32],
    dy: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    dx: &mut [f32],
    n: usize,
    f: usize,
    o: usize,
) {
    matmul(
        MatMut::new(dw, o, f),
        Mat::new(dy, n, o).t(),
        Mat::new(x, n, f),
        Accumulate::Add,
    );
    for row in dy.chunks_exact(o) {
        db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
    }
    if !dx.is_empty() {
        matmul(
            MatMut::new(dx, n, f),
            Mat::new(dy, n, o),
            Mat::new(w, o, f),
            Accumulate::Overwrite,
        );
    }
}

/// PyTorch's `nn.Linear` default draw: weights and biases `U(−1/√F, 1/√F)`.
pub fn init(w: &mut [f32], b: &mut [f32], fan_in: usize, rng: &mut SeqRng) {
    let k = 1.0 / (fan_in.max(1) as f32).sqrt();
    for v in w.iter_mut().chain(b.iter_mut()) {
        *v = rng.random_range(-k..=k);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn forward_and_backward_by_hand() {
        // W = [[1, 2], [3, 4], [5, 6]], b = [0.5, 0, -1], x = [[1, -1]].
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [0.5, 0.0, -1.0];
        let x = [1.0, -1.0];
        let mut y = [0.0; 3];
        super::forward(&w, &b, &x, &mut y, 1, 2, 3);
        assert_eq!(y, [-0.5, -1.0, -2.0]);
        let (mut dw, mut db, mut dx) = ([0.0; 6], [0.0; 3], [0.0; 2]);
        super::backward(&w, &x, &[1.0, 0.0, 2.0], &mut dw, &mut db, &mut dx, 1, 2, 3);
        assert_eq!(dw, [1.0, -1.0, 0.0, 0.0, 2.0, -2.0]);
        assert_eq!(db, [1.0, 0.0, 2.0]);
        assert_eq!(dx, [11.0, 14.0]);
    }
}
