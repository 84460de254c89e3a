//! Layer normalisation (Ba et al. 2016; PyTorch's `nn.LayerNorm` over the last axis, `ε = 1e-5`,
//! biased variance), forward and backward over rows of features.
//!
//! `y = γ ⊙ x̂ + β`, `x̂ = (x − μ) · r`, `r = 1/√(σ² + ε)`, with `μ` and `σ²` the mean and biased
//! variance of each row's `F` values.

/// PyTorch's default `eps`.
pub const EPS: f32 = 1e-5;

/// What [`backward`] reads of a [`forward_train`] pass.
#[derive(Debug, Default)]
pub struct NormCache {
    /// `x̂[N, F]`: the normalised rows before the affine map.
    pub xhat: Vec<f32>,
    /// `r[N]`: each row's `1/√(σ² + ε)`.
    pub rstd: Vec<f32>,
}

/// One row's mean and `1/√(σ² + ε)`, accumulated in f64 (the rows are wide, and the variance of
/// a row far from zero loses digits in f32).
fn stats(row: &[f32]) -> (f32, f32) {
    let f = row.len() as f64;
    let mean = row.iter().map(|&v| v as f64).sum::<f64>() / f;
    let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / f;
    (mean as f32, (1.0 / (var + EPS as f64).sqrt()) as f32)
}

/// Inference forward: `y[N, F] = LayerNorm(x[N, F])` with `gamma[F]`, `beta[F]`. Each row is
/// computed alone, so a row's output does not depend on the others.
pub fn forward(x: &[f32], gamma: &[f32], beta: &[f32], y: &mut [f32]) {
    let f = gamma.len();
    for (xr, yr) in x.chunks_exact(f).zip(y.chunks_exact_mut(f)) {
        let (mean, r) = stats(xr);
        for j in 0..f {
            yr[j] = gamma[j] * ((xr[j] - mean) * r) + beta[j];
        }
    }
}

/// Training forward: as [`forward`], keeping `x̂` and `r` in `cache` (resized to fit).
pub fn forward_train(x: &[f32], gamma: &[f32], beta: &[f32], y: &mut [f32], cache: &mut NormCache) {
    let f = gamma.len();
    let n = x.len() / f.max(1);
    crate::linalg::fit(&mut cache.xhat, n * f);
    crate::linalg::fit(&mut cache.rstd, n);
    let rows = x.chunks_exact(f).zip(y.chunks_exact_mut(f));
    for (i, (xr, yr)) in rows.enumerate() {
        let (mean, r) = stats(xr);
        cache.rstd[i] = r;
        let xh = &mut cache.xhat[i * f..(i + 1) * f];
        for j in 0..f {
            xh[j] = (xr[j] - mean) * r;
            yr[j] = gamma[j] * xh[j] + beta[j];
        }
    }
}

/// Backward of [`forward_train`].
///
/// - `dy[N, F]`, `gamma[F]`, `cache`: read.
/// - `dgamma[F]`, `dbeta[F]`: accumulated (`+=`).
/// - `dx[N, F]`: accumulated (`+=`): `r · (d̂ − mean(d̂) − x̂ · mean(d̂ ⊙ x̂))`, `d̂ = dy ⊙ γ`
///   (residual streams add the normalised branch's gradient to the skip path's).
pub fn backward(
    dy: &[f32],
    gamma: &[f32],
    cache: &NormCache,
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dx: &mut [f32],
) {
    let f = gamma.len();
    let rows = dy.chunks_exact(f).zip(cache.xhat.chunks_exact(f));
    for (i, ((dyr, xh), dxr)) in rows.zip(dx.chunks_exact_mut(f)).enumerate() {
        let (mut mean_d, mut mean_dx) = (0.0f32, 0.0f32);
        for j in 0..f {
            dgamma[j] += dyr[j] * xh[j];
            dbeta[j] += dyr[j];
            let d = dyr[j] * gamma[j];
            mean_d += d;
            mean_dx += d * xh[j];
        }
        mean_d /= f as f32;
        mean_dx /= f as f32;
        let r = cache.rstd[i];
        for j in 0..f {
            dxr[j] += r * (dyr[j] * gamma[j] - mean_d - xh[j] * mean_dx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_rows_like_pytorch() {
        // torch.nn.functional.layer_norm(torch.tensor([[1., 2., 4.]]), (3,), w, b)
        // with w = [1, 2, 0.5], b = [0, 1, -1], in float64: [-1.069042, 0.465479, -0.331849].
        let (x, gamma, beta) = ([1.0, 2.0, 4.0], [1.0, 2.0, 0.5], [0.0, 1.0, -1.0]);
        let mut y = [0.0; 3];
        forward(&x, &gamma, &beta, &mut y);
        for (got, want) in y.iter().zip([-1.069_041_5, 0.465_479_2, -0.331_849]) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
        let mut cache = NormCache::default();
        let mut y2 = [0.0; 3];
        forward_train(&x, &gamma, &beta, &mut y2, &mut cache);
        assert_eq!(y, y2);
    }

    #[test]
    fn backward_matches_finite_differences() {
        let (n, f) = (3, 5);
        let x: Vec<f32> = (0..n * f)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3)
            .collect();
        let gamma: Vec<f32> = (0..f).map(|j| 0.5 + 0.2 * j as f32).collect();
        let beta: Vec<f32> = (0..f).map(|j| 0.1 * j as f32 - 0.2).collect();
        let w: Vec<f32> = (0..n * f)
            .map(|i| ((i * 5 % 7) as f32 - 3.0) * 0.25)
            .collect();
        // Loss = Σ w ⊙ y, so dy = w.
        let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
            let mut y = vec![0.0; n * f];
            forward(x, gamma, beta, &mut y);
            y.iter().zip(&w).map(|(&a, &b)| a as f64 * b as f64).sum()
        };
        let mut cache = NormCache::default();
        let mut y = vec![0.0; n * f];
        forward_train(&x, &gamma, &beta, &mut y, &mut cache);
        let (mut dg, mut db, mut dx) = (vec![0.0; f], vec![0.0; f], vec![0.0; n * f]);
        backward(&w, &gamma, &cache, &mut dg, &mut db, &mut dx);
        let h = 1e-2f32;
        for i in 0..n * f {
            let (mut up, mut down) = (x.clone(), x.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (loss(&up, &gamma, &beta) - loss(&down, &gamma, &beta)) / (2.0 * h as f64);
            assert!(
                (fd - dx[i] as f64).abs() < 2e-3,
                "dx[{i}]: {fd} vs {}",
                dx[i]
            );
        }
        for j in 0..f {
            let (mut up, mut down) = (gamma.clone(), gamma.clone());
            up[j] += h;
            down[j] -= h;
            let fd = (loss(&x, &up, &beta) - loss(&x, &down, &beta)) / (2.0 * h as f64);
            assert!(
                (fd - dg[j] as f64).abs() < 2e-3,
                "dgamma[{j}]: {fd} vs {}",
                dg[j]
            );
            let (mut up, mut down) = (beta.clone(), beta.clone());
            up[j] += h;
            down[j] -= h;
            let fd = (loss(&x, &gamma, &up) - loss(&x, &gamma, &down)) / (2.0 * h as f64);
            assert!(
                (fd - db[j] as f64).abs() < 2e-3,
                "dbeta[{j}]: {fd} vs {}",
                db[j]
            );
        }
    }
}
