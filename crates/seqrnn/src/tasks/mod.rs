//! The tasks, one folder each: its data preparation, its network, its [`crate::train::Task`] for
//! the one training loop, and its `Trained` (a finished run loaded for use).
//!
//! Everything below this module (the engine, the shared network pieces, the loop, the readers,
//! run folders and reports) knows no task; a task may use any of them, and no other task.

pub mod classify;
pub mod forecast;
pub mod lm;
pub mod speech;
pub mod tag;
pub mod translate;
