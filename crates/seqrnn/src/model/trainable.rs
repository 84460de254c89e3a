//! What the shared training steps need of a model trained on batches of whole sequences: its
//! batch, cache and workspace types, and its mirrored training passes.

use crate::dropout::RowRng;
use crate::error::Result;

/// A model trained by one forward and one backward pass over a batch of examples, whose loss
/// is a sum scaled by a factor the step chooses (`1 / tokens`, `1 / sequences`).
pub trait Trainable {
    /// One batch of examples, as the model reads it.
    type Batch: Default;
    /// What [`Trainable::forward_train`] keeps for [`Trainable::backward`].
    type Cache: Default;
    /// Buffers both passes reuse from one step to the next.
    type Workspace: Default;

    /// Training forward pass over `batch` at weights `params[P]`: returns the summed loss times
    /// `scale` (dropout masks drawn from `rng`) and keeps what the backward pass reads in
    /// `cache`.
    ///
    /// # Errors
    /// A shape error when `params` or `batch` do not fit the model.
    fn forward_train(
        &self,
        params: &[f32],
        batch: &Self::Batch,
        scale: f32,
        cache: &mut Self::Cache,
        ws: &mut Self::Workspace,
        rng: &mut RowRng,
    ) -> Result<f64>;

    /// Backward pass of the last [`Trainable::forward_train`]: accumulates (`+=`) the
    /// gradient of its loss into `grads[P]` (the layout of `params`).
    ///
    /// # Errors
    /// A shape error when `grads` does not fit the model.
    fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        cache: &Self::Cache,
        ws: &mut Self::Workspace,
    ) -> Result<()>;
}

/// Implements [`Trainable`] for a model whose inherent `forward_train` and `backward` have the
/// trait's signatures: `trainable!(Model, Batch, Cache, Workspace)`.
macro_rules! trainable {
    ($model:ty, $batch:ty, $cache:ty, $ws:ty) => {
        impl crate::model::Trainable for $model {
            type Batch = $batch;
            type Cache = $cache;
            type Workspace = $ws;

            fn forward_train(
                &self,
                params: &[f32],
                batch: &$batch,
                scale: f32,
                cache: &mut $cache,
                ws: &mut $ws,
                rng: &mut crate::dropout::RowRng,
            ) -> crate::error::Result<f64> {
                <$model>::forward_train(self, params, batch, scale, cache, ws, rng)
            }

            fn backward(
                &self,
                params: &[f32],
                grads: &mut [f32],
                cache: &$cache,
                ws: &mut $ws,
            ) -> crate::error::Result<()> {
                <$model>::backward(self, params, grads, cache, ws)
            }
        }
    };
}
pub(crate) use trainable;
