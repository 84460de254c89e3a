//! Training: one loop ([`fit()`]) for every task, the checkpoint format it writes
//! ([`checkpoint`]), what a task implements ([`task`]), and the tasks: language models
//! ([`lm`]) and their last-token form ([`last_token`]), forecasting ([`forecast`]), classification ([`classify`]), translation
//! ([`translate`]), tagging ([`tag`]) and speech recognition ([`speech`]).

pub mod checkpoint;
pub mod classify;
pub mod fit;
pub mod forecast;
pub mod last_token;
pub mod lm;
pub mod speech;
pub mod tag;
pub mod task;
pub mod translate;

pub use fit::{
    fit, EarlyStopping, FitConfig, FitOutcome, KeepCheckpoints, NtAsgd, Optimizer, RunEnd,
};
pub use lm::{evaluate, train, EvalResult, Preset, TrainConfig, TrainOutcome, WindowLengths};
pub use task::{BatchLoss, LossAverage, Progress, Silent, StepInfo, Task, Validation, Weights};
