pub mod config;
pub mod reference;

pub use config::{CellKind, Direction, GruVariant, RnnConfig};
