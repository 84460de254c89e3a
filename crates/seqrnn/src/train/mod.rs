//! Training: one loop ([`fit()`]) for every task, the checkpoint format it writes
//! ([`checkpoint`]), what a task implements ([`task`]), and the tasks: language models
//! ([`lm`]) and their last-token form ([`last_token`]), forecasting ([`forecast`]), classification ([`classify`]), translation
//! ([`translate`]), tagging ([`tag`]) and speech recognition ([`speech`]).

pub mod checkpoint;
pub mod fit;
pub mod metrics;
pub mod task;

pub use fit::{
    fit, EarlyStopping, FitConfig, FitOutcome, KeepCheckpoints, NtAsgd, Optimizer, RunEnd,
};
pub use task::{BatchLoss, LossAverage, Progress, Silent, StepInfo, Task, Validation, Weights};
