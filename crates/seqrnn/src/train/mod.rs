//! Training loops: [`lm`] for language models; [`fit`], the epoch loop shared by the supervised
//! tasks [`forecast`] and [`classify`].

pub mod classify;
pub mod fit;
pub mod forecast;
pub mod lm;

pub use lm::{
    evaluate, train, EvalResult, Optimizer, Preset, Progress, Silent, Start, StepInfo, TrainConfig,
    TrainOutcome,
};
