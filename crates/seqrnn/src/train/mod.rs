//! Training: one loop ([`fit()`]) for every task, the checkpoint format it writes
//! ([`checkpoint`]), what a task implements ([`task`]) and the metrics files ([`metrics`]). The
//! tasks themselves live in the `tasks` folder above this module.

pub mod checkpoint;
pub mod fit;
pub mod metrics;
pub mod task;

pub use fit::{
    fit, EarlyStopping, FitConfig, FitOutcome, KeepCheckpoints, NtAsgd, Optimizer, RunEnd,
};
pub use task::{
    About, BatchLoss, BucketSteps, Buckets, Identity, LossAverage, Progress, Rank, Silent, Step,
    StepInfo, Task, Validation, Weights,
};
