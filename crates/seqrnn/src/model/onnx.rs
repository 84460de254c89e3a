//! The network pieces of an ONNX export, shared by every task's exporter: embedding lookups,
//! recurrent stacks on ONNX's own `LSTM` / `GRU` operators (so runtimes use their fused
//! kernels), dense layers, pooling over each sequence's real steps and the length mask. Each
//! function adds its nodes to a [`Graph`] and returns the names of the values it wrote; the
//! caller's `prefix` keeps names apart.
//!
//! Recurrent weights leave the engine's layout ([`crate::rnn::RnnLayout`], PyTorch's) for
//! ONNX's: gate rows `i, f, g, o` become `i, o, f, c` (LSTM), `r, z, n` become `z, r, h`
//! (GRU); `W [D, G·H, I]`, `R [D, G·H, H]`, `B [D, 2·G·H] = [W_b, R_b]`; PyTorch's GRU
//! ("reset after") is `linear_before_reset = 1`, the "reset before" form 0. With
//! `sequence_lens`, each direction reads a sequence within its own length (the reverse
//! direction from its last real step), which is the padding-exact encoder's rule.

use crate::io::onnx::{Attr, Dim, Graph, FLOAT};
use crate::rnn::{CellKind, CellParams, GruVariant, RnnConfig, RnnLayout};

/// Blocks of PyTorch's gate rows in ONNX's order: LSTM `i, f, g, o` → `i, o, f, c`; GRU
/// `r, z, n` → `z, r, h`.
pub fn onnx_gate_order(cell: CellKind) -> &'static [usize] {
    match cell {
        CellKind::Lstm => &[0, 3, 1, 2],
        CellKind::Gru(_) => &[1, 0, 2],
        // Exported with elementary operators instead (`Stack::add_minimal`).
        CellKind::MinGru | CellKind::MinLstm => &[],
    }
}

/// `w`'s row blocks of `rows` rows of `cols` values each, in `order`.
pub fn reorder(w: &[f32], rows: usize, cols: usize, order: &[usize]) -> Vec<f32> {
    order
        .iter()
        .flat_map(|&g| w[g * rows * cols..(g + 1) * rows * cols].iter().copied())
        .collect()
}

/// `w [rows, cols]` transposed to `[cols, rows]`.
pub fn transposed(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; rows * cols];
    for (r, row) in w.chunks_exact(cols).enumerate() {
        for (c, &x) in row.iter().enumerate() {
            t[c * rows + r] = x;
        }
    }
    t
}

/// The shared int64 constants the pieces use, by name: `axes0`, `axes1`, `axes2` (`[0]`,
/// `[1]`, `[2]`), `keep2` (`[0, 0, -1]`, a `Reshape` to `[T, B, rest]`), `keep1` (`[0, -1]`).
fn constant(g: &mut Graph, name: &str) -> String {
    let values: &[i64] = match name {
        "axes0" => &[0],
        "axes1" => &[1],
        "axes2" => &[2],
        "keep2" => &[0, 0, -1],
        "keep1" => &[0, -1],
        _ => unreachable!("no constant `{name}`"),
    };
    g.shared_ints(name, values);
    name.to_string()
}

/// `out = x` without its axis `axis` (0, 1 or 2) of size 1.
pub fn squeeze(g: &mut Graph, x: &str, axis: usize, out: &str) {
    let axes = constant(g, &format!("axes{axis}"));
    g.node("Squeeze", &[x, &axes], &[out], &[]);
}

/// `out = x` with a new axis `axis` (0, 1 or 2) of size 1.
pub fn unsqueeze(g: &mut Graph, x: &str, axis: usize, out: &str) {
    let axes = constant(g, &format!("axes{axis}"));
    g.node("Unsqueeze", &[x, &axes], &[out], &[]);
}

/// `out = table[ids]`: a `Gather` of `table [rows, width]` stored as `name`.
pub fn embedding(g: &mut Graph, name: &str, table: &[f32], width: usize, ids: &str, out: &str) {
    g.weight(name, &[table.len() / width, width], table);
    g.node("Gather", &[name, ids], &[out], &[("axis", Attr::Int(0))]);
}

/// `out = x · wᵀ + b` for `w [outputs, inputs]` (PyTorch's `Linear`), stored transposed as
/// `{name}.weight_t` with `{name}.bias`; `x [..., inputs]`.
pub fn dense(g: &mut Graph, name: &str, w: &[f32], b: &[f32], x: &str, out: &str) {
    let (o, i) = (b.len(), w.len() / b.len());
    let (wt, bias, prod) = (
        format!("{name}.weight_t"),
        format!("{name}.bias"),
        format!("{name}.product"),
    );
    g.weight(&wt, &[i, o], &transposed(w, o, i));
    g.weight(&bias, &[o], b);
    g.node("MatMul", &[x, &wt], &[&prod], &[]);
    g.node("Add", &[&prod, &bias], &[out], &[]);
}

/// Initial states of a stack: zeros, or slices of graph values `[L·D, B, H]`.
#[derive(Clone, Copy, Debug, Default)]
pub enum Initial<'a> {
    /// Every layer starts from zeros.
    #[default]
    Zeros,
    /// Layer `l` starts from rows `l·D .. (l+1)·D` of `h0` (and `c0` for an LSTM).
    Stacked {
        /// Hidden state `[L·D, B, H]`.
        h0: &'a str,
        /// Cell state `[L·D, B, H]` (LSTM).
        c0: Option<&'a str>,
    },
}

/// A recurrent stack to add: its configuration, parameter block and inputs.
#[derive(Clone, Copy, Debug)]
pub struct Stack<'a> {
    /// Names' prefix (`rnn`: weights `rnn.W0`, values `rnn.y0` …).
    pub prefix: &'a str,
    /// The stack.
    pub config: &'a RnnConfig,
    /// Its parameter block, in [`RnnLayout`] order.
    pub block: &'a [f32],
    /// Its input `[T, B, I]`.
    pub x: &'a str,
    /// Real lengths, int32 `[B]` (`None`: every sequence is `T` steps long).
    pub lens: Option<&'a str>,
    /// Initial states.
    pub initial: Initial<'a>,
}

/// The values a stack wrote.
#[derive(Clone, Debug, Default)]
pub struct StackOut {
    /// The top layer's outputs `[T, B, D·H]` (`[forward H | reverse H]`).
    pub top: String,
    /// Each layer's final hidden states `[D, B, H]`.
    pub h_n: Vec<String>,
    /// Each layer's final cell states `[D, B, H]` (LSTM).
    pub c_n: Vec<String>,
}

impl Stack<'_> {
    /// Adds the stack's nodes: per layer the weights in ONNX's layout, the state slices, the
    /// operator and the reshape of its output `[T, D, B, H]` to `[T, B, D·H]`. Needs
    /// nothing else.
    pub fn add(&self, g: &mut Graph) -> StackOut {
        if self.config.cell.is_minimal() {
            return self.add_minimal(g);
        }
        let c = self.config;
        let layout = RnnLayout::new(c);
        let mut out = StackOut::default();
        let mut x = self.x.to_string();
        for l in 0..c.num_layers {
            let p = format!("{}.", self.prefix);
            let (w, r, b) = (format!("{p}W{l}"), format!("{p}R{l}"), format!("{p}B{l}"));
            self.weights(g, &layout, l, [&w, &r, &b]);
            let (h0, c0) = self.initial_states(g, l);
            let (y, yh, yc) = (format!("{p}y{l}"), format!("{p}hn{l}"), format!("{p}cn{l}"));
            let lens = self.lens.unwrap_or("");
            let mut attrs = vec![("hidden_size", Attr::Int(c.hidden_size as i64))];
            if c.directions() == 2 {
                attrs.push(("direction", Attr::Str("bidirectional")));
            }
            if c.cell == CellKind::Lstm {
                let inputs = [x.as_str(), &w, &r, &b, lens, &h0, &c0];
                g.node("LSTM", &inputs, &[&y, &yh, &yc], &attrs);
                out.c_n.push(yc);
            } else {
                let after = c.cell == CellKind::Gru(GruVariant::ResetAfter);
                attrs.push(("linear_before_reset", Attr::Int(i64::from(after))));
                g.node(
                    "GRU",
                    &[x.as_str(), &w, &r, &b, lens, &h0],
                    &[&y, &yh],
                    &attrs,
                );
            }
            out.h_n.push(yh);
            x = format!("{p}x{}", l + 1);
            if c.directions() == 2 {
                let t = format!("{p}yt{l}");
                let perm = ("perm", Attr::Ints(vec![0, 2, 1, 3]));
                g.node("Transpose", &[&y], &[&t], &[perm]);
                let keep = constant(g, "keep2");
                g.node("Reshape", &[&t, &keep], &[&x], &[]);
            } else {
                squeeze(g, &y, 1, &x);
            }
        }
        out.top = x;
        out
    }

    /// Layer `l`'s `W`, `R`, `B` in ONNX's layout, both directions stacked.
    fn weights(&self, g: &mut Graph, layout: &RnnLayout, l: usize, names: [&str; 3]) {
        let c = self.config;
        let (h, d, gates) = (c.hidden_size, c.directions(), c.cell.gates());
        let order = onnx_gate_order(c.cell);
        let (mut w, mut r, mut b) = (Vec::new(), Vec::new(), Vec::new());
        let input = layout.cell(l, 0).input_size;
        for dir in 0..d {
            let cp = CellParams::new(self.block, layout.cell(l, dir));
            w.extend(reorder(cp.w_ih, h, input, order));
            r.extend(reorder(cp.w_hh, h, h, order));
            b.extend(reorder(cp.b_ih, h, 1, order));
            b.extend(reorder(cp.b_hh, h, 1, order));
        }
        g.weight(names[0], &[d, gates * h, input], &w);
        g.weight(names[1], &[d, gates * h, h], &r);
        g.weight(names[2], &[d, 2 * gates * h], &b);
    }

    /// Layer `l`'s initial `h` and `c` value names (`""`: zeros).
    fn initial_states(&self, g: &mut Graph, l: usize) -> (String, String) {
        let Initial::Stacked { h0, c0 } = self.initial else {
            return (String::new(), String::new());
        };
        let d = self.config.directions() as i64;
        let p = self.prefix;
        let (from, to) = (format!("{p}.from{l}"), format!("{p}.to{l}"));
        g.ints(&from, &[l as i64 * d]);
        g.ints(&to, &[(l as i64 + 1) * d]);
        let slice = |g: &mut Graph, src: &str, name: String| {
            let axes = constant(g, "axes0");
            g.node("Slice", &[src, &from, &to, &axes], &[&name], &[]);
            name
        };
        let h = slice(g, h0, format!("{p}.h0_{l}"));
        let c = c0.map_or(String::new(), |c0| slice(g, c0, format!("{p}.c0_{l}")));
        (h, c)
    }
}

/// A padding-exact encoder: the stack `prefix` (its block `block`) over `x [T, B, I]` from
/// zeros, each sequence read within its length `lens` (int32 `[B]`).
pub fn padded_encoder(
    g: &mut Graph,
    prefix: &str,
    config: &RnnConfig,
    block: &[f32],
    x: &str,
    lens: &str,
) -> StackOut {
    Stack {
        prefix,
        config,
        block,
        x,
        lens: Some(lens),
        initial: Initial::Zeros,
    }
    .add(g)
}

impl Stack<'_> {
    /// The minimal cells (no ONNX operator): per layer and direction, the input projection of
    /// every step (`MatMul` + `Add`), then a `Scan` over time whose body is one step of the
    /// cell ([`minimal_body`]); the reverse direction scans backwards. With lengths, a mask
    /// input keeps the state unchanged past each sequence's end, so the forward direction's
    /// final state is the one at its last real step and the reverse direction starts there
    /// from its initial state: the padding-exact encoder's rule.
    fn add_minimal(&self, g: &mut Graph) -> StackOut {
        let c = self.config;
        let layout = RnnLayout::new(c);
        let (h, d, p) = (c.hidden_size, c.directions(), self.prefix);
        let mask = self.lens.map(|lens| {
            let name = format!("{p}.step_mask");
            step_mask(g, lens, self.x, &name);
            name
        });
        let body = Attr::Graph(Box::new(minimal_body(c.cell, h, mask.is_some())));
        let mut out = StackOut::default();
        let mut x = self.x.to_string();
        for l in 0..c.num_layers {
            let (mut ys, mut finals) = (Vec::new(), Vec::new());
            for dir in 0..d {
                let q = format!("{p}.l{l}d{dir}");
                let cp = CellParams::new(self.block, layout.cell(l, dir));
                let a = format!("{q}.a");
                dense(g, &format!("{q}.proj"), cp.w_ih, cp.b_ih, &x, &a);
                let h0 = self.minimal_initial(g, l, dir, &a, h);
                let mut inputs = vec![h0.as_str(), a.as_str()];
                inputs.extend(mask.as_deref());
                let (hn, y) = (format!("{q}.hn"), format!("{q}.y"));
                let rev = dir as i64;
                let attrs = [
                    ("body", body.clone()),
                    ("num_scan_inputs", Attr::Int(inputs.len() as i64 - 1)),
                    (
                        "scan_input_directions",
                        Attr::Ints(vec![rev; inputs.len() - 1]),
                    ),
                    ("scan_output_directions", Attr::Ints(vec![rev])),
                ];
                g.node("Scan", &inputs, &[&hn, &y], &attrs);
                let one = format!("{q}.hn1");
                unsqueeze(g, &hn, 0, &one);
                ys.push(y);
                finals.push(one);
            }
            x = format!("{p}.x{}", l + 1);
            let h_n = format!("{p}.hn{l}");
            concat(g, &ys, 2, &x);
            concat(g, &finals, 0, &h_n);
            out.h_n.push(h_n);
        }
        out.top = x;
        out
    }

    /// Layer `l`, direction `dir`'s initial state `[B, H]`: zeros shaped after the projection
    /// `a [T, B, G·H]`, or a row of the given states.
    fn minimal_initial(&self, g: &mut Graph, l: usize, dir: usize, a: &str, h: usize) -> String {
        let q = format!("{}.l{l}d{dir}", self.prefix);
        let (row, zeros) = (format!("{q}.h0row"), format!("{q}.h0"));
        let (from, to) = (format!("{q}.from"), format!("{q}.to"));
        match self.initial {
            Initial::Zeros => {
                g.ints(&from, &[0, 0]);
                g.ints(&to, &[1, h as i64]);
                let axes02 = format!("{q}.axes02");
                g.ints(&axes02, &[0, 2]);
                let first = format!("{q}.first");
                g.node("Slice", &[a, &from, &to, &axes02], &[&first], &[]);
                let zero = format!("{q}.zero");
                g.weight(&zero, &[1], &[0.0]);
                g.node("Mul", &[&first, &zero], &[&row], &[]);
            }
            Initial::Stacked { h0, .. } => {
                let k = (l * self.config.directions() + dir) as i64;
                g.ints(&from, &[k]);
                g.ints(&to, &[k + 1]);
                let axes = constant(g, "axes0");
                g.node("Slice", &[h0, &from, &to, &axes], &[&row], &[]);
            }
        }
        squeeze(g, &row, 0, &zeros);
        zeros
    }
}

/// `out`: `parts` concatenated along `axis` (one part: an `Identity`).
fn concat(g: &mut Graph, parts: &[String], axis: i64, out: &str) {
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match parts.len() {
        1 => g.node("Identity", &parts, &[out], &[]),
        _ => g.node("Concat", &parts, &[out], &[("axis", Attr::Int(axis))]),
    }
}

/// `out [T, B, 1]` float: 1 at each sequence's real steps `t < lens[b]` (int32 `[B]`), 0 past
/// its end, for values `like [T, B, ...]`.
fn step_mask(g: &mut Graph, lens: &str, like: &str, out: &str) {
    let n = |s: &str| format!("{out}.{s}");
    g.node("Shape", &[like], &[&n("shape")], &[]);
    g.ints(&n("zero1"), &[0]);
    g.ints(&n("one1"), &[1]);
    g.node("Gather", &[&n("shape"), &n("zero1")], &[&n("t1")], &[]);
    squeeze(g, &n("t1"), 0, &n("t"));
    squeeze(g, &n("zero1"), 0, &n("zero"));
    squeeze(g, &n("one1"), 0, &n("one"));
    g.node(
        "Range",
        &[&n("zero"), &n("t"), &n("one")],
        &[&n("steps")],
        &[],
    );
    unsqueeze(g, &n("steps"), 1, &n("col"));
    g.node("Cast", &[lens], &[&n("lens64")], &[("to", Attr::Int(7))]);
    unsqueeze(g, &n("lens64"), 0, &n("row"));
    g.node("Less", &[&n("col"), &n("row")], &[&n("tb")], &[]);
    g.node("Cast", &[&n("tb")], &[&n("tbf")], &[("to", Attr::Int(1))]);
    unsqueeze(g, &n("tbf"), 2, out);
}

/// The body of a minimal cell's `Scan`: one step. Inputs the state `h [B, H]`, the step's
/// pre-activations `a [B, G·H]` and (with lengths) its mask `m [B, 1]`; outputs the new state
/// and, as the scan output, the same state. `g(v)` is `Where(v ≥ 0, v + ½, σ(v))`.
pub fn minimal_body(cell: CellKind, h: usize, masked: bool) -> crate::io::onnx::GraphProto {
    let mut b = Graph::new("minimal_step", "one step of a minimal cell");
    let gh = cell.gates() * h;
    b.input("h", FLOAT, &[Dim::Named("B"), Dim::Fixed(h)], "state");
    b.input(
        "a",
        FLOAT,
        &[Dim::Named("B"), Dim::Fixed(gh)],
        "pre-activations",
    );
    if masked {
        b.input(
            "m",
            FLOAT,
            &[Dim::Named("B"), Dim::Fixed(1)],
            "1 at real steps",
        );
    }
    let axes = constant(&mut b, "axes1");
    let part = |b: &mut Graph, k: usize, name: &str| {
        let (from, to) = (format!("{name}.from"), format!("{name}.to"));
        b.ints(&from, &[(k * h) as i64]);
        b.ints(&to, &[((k + 1) * h) as i64]);
        b.node("Slice", &["a", &from, &to, &axes], &[name], &[]);
    };
    part(&mut b, cell.gates() - 1, "cand_pre");
    b.weight("half", &[1], &[0.5]);
    b.weight("zero", &[1], &[0.0]);
    b.node("GreaterOrEqual", &["cand_pre", "zero"], &["positive"], &[]);
    b.node("Add", &["cand_pre", "half"], &["shifted"], &[]);
    b.node("Sigmoid", &["cand_pre"], &["squashed"], &[]);
    b.node(
        "Where",
        &["positive", "shifted", "squashed"],
        &["cand"],
        &[],
    );
    part(&mut b, 0, "first_pre");
    b.node("Sigmoid", &["first_pre"], &["first"], &[]);
    if cell == CellKind::MinGru {
        // h + z (h̃ − h) = (1 − z) h + z h̃.
        b.node("Sub", &["cand", "h"], &["toward"], &[]);
        b.node("Mul", &["first", "toward"], &["step"], &[]);
        b.node("Add", &["h", "step"], &["new"], &[]);
    } else {
        // (f h + i h̃) / (f + i).
        part(&mut b, 1, "input_pre");
        b.node("Sigmoid", &["input_pre"], &["input"], &[]);
        b.node("Mul", &["first", "h"], &["kept"], &[]);
        b.node("Mul", &["input", "cand"], &["added"], &[]);
        b.node("Add", &["kept", "added"], &["sum"], &[]);
        b.node("Add", &["first", "input"], &["norm"], &[]);
        b.node("Div", &["sum", "norm"], &["new"], &[]);
    }
    if masked {
        b.node("Sub", &["new", "h"], &["change"], &[]);
        b.node("Mul", &["m", "change"], &["kept_change"], &[]);
        b.node("Add", &["h", "kept_change"], &["h_out"], &[]);
    } else {
        b.node("Identity", &["new"], &["h_out"], &[]);
    }
    b.node("Identity", &["h_out"], &["y"], &[]);
    let state = [Dim::Named("B"), Dim::Fixed(h)];
    b.output("h_out", FLOAT, &state, "the new state");
    b.output("y", FLOAT, &state, "the step's output");
    b.into_body()
}

/// Final states `[D, B, H]` as one row per sequence `[B, D·H]` (`[forward | reverse]`).
pub fn states_as_rows(g: &mut Graph, h_n: &str, out: &str) {
    let t = format!("{out}.t");
    g.node(
        "Transpose",
        &[h_n],
        &[&t],
        &[("perm", Attr::Ints(vec![1, 0, 2]))],
    );
    let keep = constant(g, "keep1");
    g.node("Reshape", &[&t, &keep], &[out], &[]);
}

/// `lengths` int64 `[B]` cast to the recurrent operators' int32 `lens32`, and the mask
/// `mask [T, B, 1]` (bool, true at real steps) for values `like [T, B, ...]`.
pub fn lengths_and_mask(g: &mut Graph, lengths: &str, like: &str) {
    g.node("Cast", &[lengths], &["lens32"], &[("to", Attr::Int(6))]);
    g.node("Shape", &[like], &["mask.shape"], &[]);
    g.ints("mask.zero", &[0]);
    g.ints("mask.one", &[1]);
    g.node("Gather", &["mask.shape", "mask.zero"], &["mask.t1"], &[]);
    squeeze(g, "mask.t1", 0, "mask.t");
    squeeze(g, "mask.zero", 0, "mask.start");
    squeeze(g, "mask.one", 0, "mask.delta");
    g.node(
        "Range",
        &["mask.start", "mask.t", "mask.delta"],
        &["mask.steps"],
        &[],
    );
    unsqueeze(g, "mask.steps", 1, "mask.col");
    unsqueeze(g, lengths, 0, "mask.row");
    g.node("Less", &["mask.col", "mask.row"], &["mask.tb"], &[]);
    unsqueeze(g, "mask.tb", 2, "mask");
}

/// Mean over each sequence's real steps of `top [T, B, F]` into `out [B, F]`. Needs
/// [`lengths_and_mask`].
pub fn mean_pool(g: &mut Graph, top: &str, lengths: &str, out: &str) {
    g.node("Cast", &["mask"], &["pool.maskf"], &[("to", Attr::Int(1))]);
    g.node("Mul", &[top, "pool.maskf"], &["pool.masked"], &[]);
    let axes = constant(g, "axes0");
    g.node(
        "ReduceSum",
        &["pool.masked", &axes],
        &["pool.sum"],
        &[("keepdims", Attr::Int(0))],
    );
    g.node("Cast", &[lengths], &["pool.lenf"], &[("to", Attr::Int(1))]);
    unsqueeze(g, "pool.lenf", 1, "pool.len");
    g.node("Div", &["pool.sum", "pool.len"], &[out], &[]);
}

/// Element-wise maximum over each sequence's real steps of `top [T, B, F]` into `out [B, F]`
/// (a `TopK` of 1 along time over the masked values). Needs [`lengths_and_mask`].
pub fn max_pool(g: &mut Graph, top: &str, out: &str) {
    g.weight("pool.floor", &[1], &[f32::MIN]);
    g.node("Where", &["mask", top, "pool.floor"], &["pool.masked"], &[]);
    g.ints("pool.k", &[1]);
    g.node(
        "TopK",
        &["pool.masked", "pool.k"],
        &["pool.top", "pool.at"],
        &[("axis", Attr::Int(0))],
    );
    squeeze(g, "pool.top", 0, out);
}

/// The values of the tensor `name` of a model's parameter block (a name the model's own layout
/// declares: a missing one is a bug of the exporter, not of the run).
pub fn tensor<'a>(layout: &crate::model::ParamLayout, params: &'a [f32], name: &str) -> &'a [f32] {
    let entry = layout
        .get(name)
        .unwrap_or_else(|| panic!("the model's layout has no tensor `{name}`"));
    &params[entry.range.clone()]
}

/// The recurrent block `{prefix}.*` of a model's parameter block (its tensors are contiguous,
/// in [`RnnLayout`] order).
pub fn rnn_block<'a>(
    layout: &crate::model::ParamLayout,
    params: &'a [f32],
    prefix: &str,
) -> &'a [f32] {
    let dotted = format!("{prefix}.");
    let ranges = layout
        .entries()
        .iter()
        .filter(|e| e.name.starts_with(&dotted) && e.alias_of.is_none())
        .map(|e| e.range.clone());
    let (start, end) = ranges.fold((usize::MAX, 0), |(s, e), r| (s.min(r.start), e.max(r.end)));
    &params[start..end]
}

/// A pooling of `top [T, B, D·H]` into `out [B, D·H]` over each sequence's real steps:
/// `last` reads the top layer's final states `h_n [D, B, H]`; `mean` and `max` need
/// [`lengths_and_mask`].
pub fn pool(
    g: &mut Graph,
    pooling: crate::model::pooling::Pooling,
    top: &str,
    h_n: &str,
    lengths: &str,
    out: &str,
) {
    use crate::model::pooling::Pooling;
    match pooling {
        Pooling::Last => states_as_rows(g, h_n, out),
        Pooling::Mean => mean_pool(g, top, lengths, out),
        Pooling::Max => max_pool(g, top, out),
    }
}

/// `out = LayerNorm(x)` over the last axis (PyTorch's, `ε = 1e-5`), stored as
/// `{name}.weight`/`{name}.bias`, in operators every operator set has: the means are products
/// with a `[D, 1]` column of `1/D`.
pub fn layer_norm(g: &mut Graph, name: &str, gamma: &[f32], beta: &[f32], x: &str, out: &str) {
    let d = gamma.len();
    let n = |s: &str| format!("{name}.{s}");
    g.weight(&n("avg"), &[d, 1], &vec![1.0 / d as f32; d]);
    g.weight(&n("eps"), &[], &[crate::model::norm::EPS]);
    g.weight(&n("weight"), &[d], gamma);
    g.weight(&n("bias"), &[d], beta);
    g.node("MatMul", &[x, &n("avg")], &[&n("mean")], &[]);
    g.node("Sub", &[x, &n("mean")], &[&n("centred")], &[]);
    g.node("Mul", &[&n("centred"), &n("centred")], &[&n("sq")], &[]);
    g.node("MatMul", &[&n("sq"), &n("avg")], &[&n("var")], &[]);
    g.node("Add", &[&n("var"), &n("eps")], &[&n("var_eps")], &[]);
    g.node("Sqrt", &[&n("var_eps")], &[&n("std")], &[]);
    g.node("Div", &[&n("centred"), &n("std")], &[&n("xhat")], &[]);
    g.node("Mul", &[&n("xhat"), &n("weight")], &[&n("scaled")], &[]);
    g.node("Add", &[&n("scaled"), &n("bias")], &[out], &[]);
}

/// `out = GELU(x)` in its tanh form, `½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
pub fn gelu(g: &mut Graph, name: &str, x: &str, out: &str) {
    let n = |s: &str| format!("{name}.{s}");
    for (k, v) in [
        ("half", 0.5),
        ("one", 1.0),
        ("k", 0.797_884_6),
        ("c", 0.044_715),
    ] {
        g.weight(&n(k), &[], &[v]);
    }
    g.node("Mul", &[x, x], &[&n("x2")], &[]);
    g.node("Mul", &[&n("x2"), x], &[&n("x3")], &[]);
    g.node("Mul", &[&n("x3"), &n("c")], &[&n("cx3")], &[]);
    g.node("Add", &[x, &n("cx3")], &[&n("inner")], &[]);
    g.node("Mul", &[&n("inner"), &n("k")], &[&n("arg")], &[]);
    g.node("Tanh", &[&n("arg")], &[&n("tanh")], &[]);
    g.node("Add", &[&n("tanh"), &n("one")], &[&n("gate")], &[]);
    g.node("Mul", &[x, &n("half")], &[&n("halfx")], &[]);
    g.node("Mul", &[&n("halfx"), &n("gate")], &[out], &[]);
}

/// A [`ResidualStack`](crate::model::residual::ResidualStack) over `x [T, B, D]` from the
/// states `h0` (and `c0`) `[L, B, D]`: per block the norms, the one-layer recurrent stack (on
/// ONNX's operator or a `Scan`, as [`Stack::add`]), the MLP and the residual additions; `top`
/// is the final norm's output, `h_n`/`c_n` each layer's final states `[1, B, D]`.
pub fn residual(
    g: &mut Graph,
    stack: &crate::model::residual::ResidualStack,
    block: &[f32],
    x: &str,
    h0: &str,
    c0: Option<&str>,
) -> StackOut {
    let layout = stack.param_layout();
    let t = |name: &str| tensor(layout, block, name);
    let mut out = StackOut::default();
    let mut stream = x.to_string();
    for l in 0..stack.config().layers {
        let p = format!("blocks.{l}");
        let n = |s: &str| format!("{p}.{s}");
        let (w, b) = (n("norm1.weight"), n("norm1.bias"));
        layer_norm(g, &n("norm1"), t(&w), t(&b), &stream, &n("u"));
        g.ints(&n("from"), &[l as i64]);
        g.ints(&n("to"), &[l as i64 + 1]);
        let axes = constant(g, "axes0");
        let slice = |g: &mut Graph, src: &str, name: String| {
            g.node("Slice", &[src, &n("from"), &n("to"), &axes], &[&name], &[]);
            name
        };
        let h = slice(g, h0, n("h0"));
        let c = c0.map(|c0| slice(g, c0, n("c0")));
        let rnn = Stack {
            prefix: &n("rnn"),
            config: stack.rnn().config(),
            block: stack.rnn_block(block, l),
            x: &n("u"),
            lens: None,
            initial: Initial::Stacked {
                h0: &h,
                c0: c.as_deref(),
            },
        }
        .add(g);
        g.node("Add", &[&stream, &rnn.top], &[&n("x1")], &[]);
        out.h_n.extend(rnn.h_n);
        out.c_n.extend(rnn.c_n);
        stream = n("x1");
        if stack.config().mlp > 0 {
            let (w, b) = (n("norm2.weight"), n("norm2.bias"));
            layer_norm(g, &n("norm2"), t(&w), t(&b), &stream, &n("v"));
            let (w, b) = (n("mlp.0.weight"), n("mlp.0.bias"));
            dense(g, &n("mlp.0"), t(&w), t(&b), &n("v"), &n("a"));
            gelu(g, &n("gelu"), &n("a"), &n("act"));
            let (w, b) = (n("mlp.2.weight"), n("mlp.2.bias"));
            dense(g, &n("mlp.2"), t(&w), t(&b), &n("act"), &n("m"));
            g.node("Add", &[&stream, &n("m")], &[&n("x2")], &[]);
            stream = n("x2");
        }
    }
    layer_norm(
        g,
        "norm",
        t("norm.weight"),
        t("norm.bias"),
        &stream,
        "norm.out",
    );
    out.top = "norm.out".into();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_blocks_take_onnx_order() {
        // Four blocks of one row each: i f g o → i o f g.
        let w = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(
            reorder(&w, 1, 1, onnx_gate_order(CellKind::Lstm)),
            [0.0, 3.0, 1.0, 2.0]
        );
        let gru = CellKind::Gru(GruVariant::ResetAfter);
        assert_eq!(
            reorder(&w[..3], 1, 1, onnx_gate_order(gru)),
            [1.0, 0.0, 2.0]
        );
        assert_eq!(
            transposed(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3),
            [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
    }
}
