//! Training loops.

pub mod lm;

pub use lm::{
    evaluate, train, EvalResult, Optimizer, Preset, Progress, Silent, Start, StepInfo, TrainConfig,
    TrainOutcome,
};
