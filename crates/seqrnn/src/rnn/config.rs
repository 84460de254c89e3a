//! Configuration of a recurrent stack: which cell, what sizes, which directions.

use crate::error::{Error, Result};

/// Which form of the GRU candidate state is used.
///
/// Both forms keep PyTorch's parameter layout (`bias_ih` and `bias_hh` each `[3H]`, gate rows
/// `r, z, n`) and PyTorch's update `h' = (1 − z) ⊙ n + z ⊙ h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GruVariant {
    /// `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`: PyTorch, cuDNN, and Keras with
    /// `reset_after=True` (its default).
    #[default]
    ResetAfter,
    /// `n = tanh(W_in x + W_hn (r ⊙ h) + b_n)`: the original Cho et al. (2014) form and Keras with
    /// `reset_after=False`. Its single bias per gate is `b_ih + b_hh` (both are kept so the layout
    /// matches the other variant; a Keras `bias` maps to `bias_ih` with `bias_hh = 0`).
    ResetBefore,
}

/// The recurrent cell of every layer in a stack. Written in files by its [`CellKind::name`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub enum CellKind {
    /// Long short-term memory, `G = 4` gates in row order `i, f, g, o`, with a cell state.
    #[default]
    Lstm,
    /// Gated recurrent unit, `G = 3` gates in row order `r, z, n`.
    Gru(GruVariant),
    /// The minimal GRU of Feng et al. (2024), "Were RNNs All We Needed?": `G = 2` rows `z, h`
    /// computed from the input alone, `z_t = σ(W_z x_t + b_z)`, `h̃_t = g(W_h x_t + b_h)`,
    /// `h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t`, with `g(v) = v + ½` for `v ≥ 0`, `σ(v)`
    /// otherwise (the paper's positive activation of its log-space form). No recurrent weights.
    MinGru,
    /// The minimal LSTM of the same paper: `G = 3` rows `f, i, h` from the input alone,
    /// `f_t = σ(·)`, `i_t = σ(·)`, `h̃_t = g(·)`, normalised `f'_t = f_t / (f_t + i_t)`,
    /// `i'_t = i_t / (f_t + i_t)`, `h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ h̃_t`. No recurrent weights,
    /// no cell state.
    MinLstm,
}

impl CellKind {
    /// Number of gates `G`: the weight matrices have `G·H` rows.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru(_) | CellKind::MinLstm => 3,
            CellKind::MinGru => 2,
        }
    }

    /// Whether the gates depend on the input only (the minimal cells): no `weight_hh` or
    /// `bias_hh`, and the recurrence is an element-wise scan.
    pub fn is_minimal(self) -> bool {
        matches!(self, CellKind::MinGru | CellKind::MinLstm)
    }

    /// Whether the cell carries a cell state `c` besides the hidden state `h`.
    pub fn has_cell_state(self) -> bool {
        matches!(self, CellKind::Lstm)
    }

    /// Short lowercase name: `lstm`, `gru`, `gru-reset-before`, `mingru` or `minlstm` (what
    /// [`str::parse`] accepts).
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru(GruVariant::ResetAfter) => "gru",
            CellKind::Gru(GruVariant::ResetBefore) => "gru-reset-before",
            CellKind::MinGru => "mingru",
            CellKind::MinLstm => "minlstm",
        }
    }
}

impl std::str::FromStr for CellKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "lstm" => Ok(CellKind::Lstm),
            "gru" => Ok(CellKind::Gru(GruVariant::ResetAfter)),
            "gru-reset-before" => Ok(CellKind::Gru(GruVariant::ResetBefore)),
            "mingru" => Ok(CellKind::MinGru),
            "minlstm" => Ok(CellKind::MinLstm),
            other => Err(Error::Config(format!(
                "unknown cell `{other}` (expected lstm, gru, gru-reset-before, mingru or minlstm)"
            ))),
        }
    }
}

impl From<CellKind> for String {
    fn from(c: CellKind) -> String {
        c.name().to_string()
    }
}

impl TryFrom<String> for CellKind {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// Whether each layer runs over the sequence in one direction or in both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Left to right only (`D = 1`).
    #[default]
    Forward,
    /// Left to right and right to left, outputs concatenated `[forward, reverse]` (`D = 2`).
    /// Reverse-direction parameters carry PyTorch's `_reverse` suffix.
    Bidirectional,
}

impl Direction {
    /// Number of directions `D`.
    pub fn count(self) -> usize {
        match self {
            Direction::Forward => 1,
            Direction::Bidirectional => 2,
        }
    }
}

/// Shape of a stack of recurrent layers. `validate()` before use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RnnConfig {
    /// Cell type of every layer.
    pub cell: CellKind,
    /// Features per time step of the input, `I`.
    pub input_size: usize,
    /// Units per direction of every layer, `H`.
    pub hidden_size: usize,
    /// Number of stacked layers, `L`.
    pub num_layers: usize,
    /// One or both directions.
    pub direction: Direction,
}

impl Default for RnnConfig {
    fn default() -> Self {
        RnnConfig {
            cell: CellKind::Lstm,
            input_size: 1,
            hidden_size: 1,
            num_layers: 1,
            direction: Direction::Forward,
        }
    }
}

impl RnnConfig {
    /// Checks that every size is positive.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("hidden size", self.hidden_size),
            ("input size", self.input_size),
            ("number of layers", self.num_layers),
        ] {
            if v == 0 {
                return Err(Error::Config(format!("{name} must be at least 1, got 0")));
            }
        }
        Ok(())
    }

    /// Number of directions `D`.
    pub fn directions(&self) -> usize {
        self.direction.count()
    }

    /// Input features of layer `layer`: `I` for the first, `D·H` for the others.
    pub fn layer_input_size(&self, layer: usize) -> usize {
        if layer == 0 {
            self.input_size
        } else {
            self.directions() * self.hidden_size
        }
    }

    /// Features per time step of the output, `D·H`.
    pub fn output_size(&self) -> usize {
        self.directions() * self.hidden_size
    }

    /// Number of `[B, H]` state slices, `L·D` (PyTorch's `h_0` is `[L·D, B, H]`).
    pub fn state_slices(&self) -> usize {
        self.num_layers * self.directions()
    }
}
