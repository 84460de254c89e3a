//! Where each weight and bias of a recurrent stack lives inside one contiguous parameter block.
//!
//! The block holds, for layer 0 forward, layer 0 reverse (if bidirectional), layer 1 forward, …,
//! the four tensors `weight_ih[G·H, I_l]`, `weight_hh[G·H, H]`, `bias_ih[G·H]`, `bias_hh[G·H]`,
//! row-major, back to back: exactly the order and names of PyTorch's `state_dict` for
//! `nn.LSTM`/`nn.GRU`. Gradients use an identical block, so an optimiser, gradient clipping and a
//! checkpoint writer each see one flat slice.

use std::ops::Range;

use super::config::RnnConfig;

/// Offsets of one layer-direction's four tensors within the parameter block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellOffsets {
    /// Layer index `l`.
    pub layer: usize,
    /// Direction index: 0 forward, 1 reverse.
    pub dir: usize,
    /// Input features of this layer, `I_l`.
    pub input_size: usize,
    /// `weight_ih[G·H, I_l]`.
    pub w_ih: Range<usize>,
    /// `weight_hh[G·H, H]`.
    pub w_hh: Range<usize>,
    /// `bias_ih[G·H]`.
    pub b_ih: Range<usize>,
    /// `bias_hh[G·H]`.
    pub b_hh: Range<usize>,
}

impl CellOffsets {
    /// The whole span of the four tensors (they are contiguous).
    pub fn span(&self) -> Range<usize> {
        self.w_ih.start..self.b_hh.end
    }

    /// PyTorch's name suffix for this layer-direction, e.g. `_l1_reverse`.
    pub fn suffix(&self) -> String {
        format!(
            "_l{}{}",
            self.layer,
            if self.dir == 1 { "_reverse" } else { "" }
        )
    }
}

/// One named tensor of the block: PyTorch name, shape, and position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// PyTorch `state_dict` name, e.g. `weight_hh_l0_reverse`.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Position in the block.
    pub range: Range<usize>,
}

/// The layout of a recurrent stack's parameter block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RnnLayout {
    cells: Vec<CellOffsets>,
    directions: usize,
    len: usize,
}

impl RnnLayout {
    /// Lays out the parameters of `config` (assumed valid) starting at offset 0.
    pub fn new(config: &RnnConfig) -> Self {
        let gh = config.cell.gates() * config.hidden_size;
        let h = config.hidden_size;
        // The minimal cells have no recurrent weights or biases: empty ranges.
        let (hh, bh) = match config.cell.is_minimal() {
            true => (0, 0),
            false => (gh * h, gh),
        };
        let mut cells = Vec::with_capacity(config.state_slices());
        let mut at = 0;
        let mut take = |n: usize| {
            let r = at..at + n;
            at += n;
            r
        };
        for layer in 0..config.num_layers {
            let input_size = config.layer_input_size(layer);
            for dir in 0..config.directions() {
                cells.push(CellOffsets {
                    layer,
                    dir,
                    input_size,
                    w_ih: take(gh * input_size),
                    w_hh: take(hh),
                    b_ih: take(gh),
                    b_hh: take(bh),
                });
            }
        }
        RnnLayout {
            cells,
            directions: config.directions(),
            len: at,
        }
    }

    /// Total number of parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the block is empty (never, for a valid configuration).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offsets of layer `layer`, direction `dir`.
    pub fn cell(&self, layer: usize, dir: usize) -> &CellOffsets {
        &self.cells[layer * self.directions + dir]
    }

    /// All layer-directions in block order.
    pub fn cells(&self) -> &[CellOffsets] {
        &self.cells
    }

    /// The same layout with its layers numbered from `first` instead of 0. Only the names
    /// change (`weight_ih_l{first}` …): for a stack that continues another one's layers in a
    /// model's `state_dict`, as a last layer of its own size does.
    pub fn numbered_from(&self, first: usize) -> RnnLayout {
        let mut out = self.clone();
        out.cells.iter_mut().for_each(|c| c.layer += first);
        out
    }

    /// Every tensor with its PyTorch name and shape, in `state_dict` order.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        let mut out = Vec::with_capacity(4 * self.cells.len());
        for c in &self.cells {
            let gh = c.b_ih.len();
            let s = c.suffix();
            out.push(TensorInfo {
                name: format!("weight_ih{s}"),
                shape: vec![gh, c.input_size],
                range: c.w_ih.clone(),
            });
            if !c.w_hh.is_empty() {
                out.push(TensorInfo {
                    name: format!("weight_hh{s}"),
                    shape: vec![gh, c.w_hh.len() / gh],
                    range: c.w_hh.clone(),
                });
            }
            out.push(TensorInfo {
                name: format!("bias_ih{s}"),
                shape: vec![gh],
                range: c.b_ih.clone(),
            });
            if !c.b_hh.is_empty() {
                out.push(TensorInfo {
                    name: format!("bias_hh{s}"),
                    shape: vec![gh],
                    range: c.b_hh.clone(),
                });
            }
        }
        out
    }
}

/// Read-only views of one layer-direction's parameters (or of any block with the same layout).
#[derive(Clone, Copy, Debug)]
pub struct CellParams<'a> {
    /// `weight_ih[G·H, I_l]`.
    pub w_ih: &'a [f32],
    /// `weight_hh[G·H, H]`.
    pub w_hh: &'a [f32],
    /// `bias_ih[G·H]`.
    pub b_ih: &'a [f32],
    /// `bias_hh[G·H]`.
    pub b_hh: &'a [f32],
}

impl<'a> CellParams<'a> {
    /// Views into `block` at `cell`'s offsets.
    pub fn new(block: &'a [f32], cell: &CellOffsets) -> Self {
        CellParams {
            w_ih: &block[cell.w_ih.clone()],
            w_hh: &block[cell.w_hh.clone()],
            b_ih: &block[cell.b_ih.clone()],
            b_hh: &block[cell.b_hh.clone()],
        }
    }
}

/// Writable views of one layer-direction's gradients: the `d`-twins of [`CellParams`].
#[derive(Debug)]
pub struct CellGrads<'a> {
    /// `dweight_ih[G·H, I_l]`.
    pub dw_ih: &'a mut [f32],
    /// `dweight_hh[G·H, H]`.
    pub dw_hh: &'a mut [f32],
    /// `dbias_ih[G·H]`.
    pub db_ih: &'a mut [f32],
    /// `dbias_hh[G·H]`.
    pub db_hh: &'a mut [f32],
}

impl<'a> CellGrads<'a> {
    /// Views into `block` at `cell`'s offsets.
    pub fn new(block: &'a mut [f32], cell: &CellOffsets) -> Self {
        let span = &mut block[cell.span()];
        let (dw_ih, rest) = span.split_at_mut(cell.w_ih.len());
        let (dw_hh, rest) = rest.split_at_mut(cell.w_hh.len());
        let (db_ih, db_hh) = rest.split_at_mut(cell.b_ih.len());
        CellGrads {
            dw_ih,
            dw_hh,
            db_ih,
            db_hh,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::{CellKind, Direction, GruVariant};

    #[test]
    fn layout_follows_pytorch_state_dict_order_and_shapes() {
        let cfg = RnnConfig {
            cell: CellKind::Gru(GruVariant::ResetAfter),
            input_size: 3,
            hidden_size: 5,
            num_layers: 2,
            direction: Direction::Bidirectional,
        };
        let layout = RnnLayout::new(&cfg);
        let t = layout.tensors();
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names[..8],
            [
                "weight_ih_l0",
                "weight_hh_l0",
                "bias_ih_l0",
                "bias_hh_l0",
                "weight_ih_l0_reverse",
                "weight_hh_l0_reverse",
                "bias_ih_l0_reverse",
                "bias_hh_l0_reverse"
            ]
        );
        assert_eq!(t[8].name, "weight_ih_l1");
        assert_eq!(t[8].shape, vec![15, 10]);
        assert_eq!(t[0].shape, vec![15, 3]);
        // 2 directions × (15·3 + 15·5 + 30) + 2 × (15·10 + 15·5 + 30)
        assert_eq!(layout.len(), 2 * (45 + 75 + 30) + 2 * (150 + 75 + 30));
        assert_eq!(t.last().unwrap().range.end, layout.len());
        for w in t.windows(2) {
            assert_eq!(w[0].range.end, w[1].range.start);
        }
        // Renumbering changes the names only.
        let shifted = layout.numbered_from(3);
        let s = shifted.tensors();
        assert_eq!(s[0].name, "weight_ih_l3");
        assert_eq!(s[7].name, "bias_hh_l3_reverse");
        assert_eq!(s[8].name, "weight_ih_l4");
        for (a, b) in t.iter().zip(&s) {
            assert_eq!((&a.shape, &a.range), (&b.shape, &b.range));
        }
    }
}
