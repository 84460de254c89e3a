//! Looking inside a trained language model: the gate activations and states of one layer for
//! every token of a text, the units that follow simple properties of the text, and how often the
//! gates saturate. After Karpathy, Johnson and Fei-Fei (2015), "Visualizing and Understanding
//! Recurrent Networks".
//!
//! [`inspect`] runs the model over a token sequence as one stream (batch 1, state from zero, no
//! dropout) and returns, per token, the layer's gates after their nonlinearity and its states:
//! LSTM input, forget and output gates, cell state `c` and hidden state `h`; GRU reset and
//! update gates and hidden state `h`. [`text_properties`] derives per-token properties of the
//! text, [`correlated_units`] ranks units by their correlation with each, and [`saturation`]
//! counts gate activations below 0.1 and above 0.9.

use crate::data::TokenKind;
use crate::error::{Error, Result};
use crate::rnn::{CellKind, Rnn, RnnCache, RnnState, SeqShape};
use crate::tasks::lm::LanguageModel;

/// Whether a quantity is a gate (in `[0, 1]`) or a state (around 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantityKind {
    /// A sigmoid gate, in `[0, 1]`.
    Gate,
    /// A state: the hidden state `h` in `[-1, 1]`, or the unbounded LSTM cell state `c`.
    State,
}

/// One quantity of the inspected layer for every token.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    /// File-friendly name: `input_gate`, `forget_gate`, `output_gate`, `cell`, `hidden`,
    /// `reset_gate`, `update_gate`.
    pub name: &'static str,
    /// Gate or state.
    pub kind: QuantityKind,
    /// Values token-major: `values[t · H + u]` after reading token `t`.
    pub values: Vec<f32>,
}

/// What [`inspect`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// The layer inspected, from 0.
    pub layer: usize,
    /// Units `H` of the layer.
    pub hidden: usize,
    /// Tokens `T`.
    pub tokens: usize,
    /// The quantities, gates first.
    pub quantities: Vec<Quantity>,
}

impl Inspection {
    /// The quantity called `name`, if the cell has it.
    pub fn get(&self, name: &str) -> Option<&Quantity> {
        self.quantities.iter().find(|q| q.name == name)
    }

    /// Values of unit `u` of quantity `q` over the tokens.
    pub fn unit(&self, q: &Quantity, u: usize) -> Vec<f32> {
        (0..self.tokens)
            .map(|t| q.values[t * self.hidden + u])
            .collect()
    }
}

/// Runs `model` (weights `params`) over `ids` and collects the gates and states of `layer`.
///
/// # Errors
/// [`Error::Config`] for a layer the model does not have or an empty sequence;
/// [`Error::Shape`] for token ids outside the vocabulary or a parameter block of the wrong size.
pub fn inspect(
    model: &LanguageModel,
    params: &[f32],
    ids: &[u32],
    layer: usize,
) -> Result<Inspection> {
    let c = model.config();
    if !c.block.is_plain() {
        return Err(Error::Config(
            "inspect reads the gates of a plain stack, and this model has residual blocks".into(),
        ));
    }
    if layer >= c.layers {
        return Err(Error::Config(format!(
            "layer {layer} does not exist: the model has {} layer(s), numbered from 0",
            c.layers
        )));
    }
    if c.last_hidden.is_some() && layer + 1 == c.layers {
        return Err(Error::Config(format!(
            "layer {layer} is this model's last layer of its own size, which inspect does not read; layers 0 to {} can be inspected",
            layer - 1
        )));
    }
    if ids.is_empty() {
        return Err(Error::Config("no tokens to inspect".into()));
    }
    if params.len() != model.num_params() {
        return Err(Error::Shape(format!(
            "parameter block has {} values, expected {}",
            params.len(),
            model.num_params()
        )));
    }
    if let Some(&bad) = ids.iter().find(|&&i| i as usize >= c.vocab) {
        return Err(Error::Shape(format!(
            "token id {bad} is outside the vocabulary of {}",
            c.vocab
        )));
    }
    let layout = model.layout();
    let (t_len, e, h) = (ids.len(), c.embed, c.hidden);
    let encoder = &params[layout.encoder.clone()];
    let mut x = Vec::with_capacity(t_len * e);
    for &id in ids {
        let row = id as usize * e;
        x.extend_from_slice(&encoder[row..row + e]);
    }
    // The stack without dropout: a training-mode pass keeps every gate, evaluation weights.
    let rnn_cfg = c.rnn_config();
    let rnn = Rnn::new(rnn_cfg)?;
    let shape = SeqShape { t: t_len, b: 1 };
    let mut state = RnnState::zeros(&rnn_cfg, 1);
    let mut y = vec![0.0; t_len * rnn_cfg.output_size()];
    let mut cache = RnnCache::default();
    rnn.forward_train(
        &params[layout.rnn.start..layout.rnn.start + rnn.num_params()],
        &x,
        shape,
        &mut state,
        &mut y,
        &mut cache,
        &mut crate::dropout::RowRng::new(0, 0),
    )?;
    let missing = || Error::Shape(format!("the pass kept no values for layer {layer}"));
    let gates = cache.gates(layer, 0, 1).ok_or_else(missing)?;
    let g = c.cell.gates() * h;
    // Column block `k` of the gates, as `[T, H]`.
    let block = |k: usize| -> Vec<f32> {
        (0..t_len)
            .flat_map(|t| gates[t * g + k * h..t * g + (k + 1) * h].iter().copied())
            .collect()
    };
    let hidden = cache.layer_output(layer).ok_or_else(missing)?.to_vec();
    let mut quantities = Vec::new();
    let gate = |name, values| Quantity {
        name,
        kind: QuantityKind::Gate,
        values,
    };
    match c.cell {
        CellKind::Lstm => {
            // PyTorch order i, f, g, o.
            quantities.push(gate("input_gate", block(0)));
            quantities.push(gate("forget_gate", block(1)));
            quantities.push(gate("output_gate", block(3)));
            let cell = cache.cell_state(layer, 0, 1).ok_or_else(missing)?.to_vec();
            quantities.push(Quantity {
                name: "cell",
                kind: QuantityKind::State,
                values: cell,
            });
        }
        CellKind::Gru(_) => {
            // PyTorch order r, z, n.
            quantities.push(gate("reset_gate", block(0)));
            quantities.push(gate("update_gate", block(1)));
        }
        CellKind::MinGru => {
            // z, h̃.
            quantities.push(gate("update_gate", block(0)));
        }
        CellKind::MinLstm => {
            // f, i, h̃ (before their normalisation).
            quantities.push(gate("forget_gate", block(0)));
            quantities.push(gate("input_gate", block(1)));
        }
    }
    quantities.push(Quantity {
        name: "hidden",
        kind: QuantityKind::State,
        values: hidden,
    });
    Ok(Inspection {
        layer,
        hidden: h,
        tokens: t_len,
        quantities,
    })
}

/// A per-token property of a text.
#[derive(Clone, Debug, PartialEq)]
pub struct Property {
    /// Name, e.g. `position in line`.
    pub name: &'static str,
    /// One value per token.
    pub values: Vec<f64>,
}

/// Simple properties of each token's place in the text (after reading that token):
///
/// - `position in line`: tokens since the last line break (0 right after one);
/// - `to end of line`: tokens left before the next line break;
/// - `line length`: tokens in the current line;
/// - `inside quotes`: 1 between an opening and a closing `"` (or ``` `` ``` … `''` in
///   Penn Treebank text), else 0;
/// - `inside brackets`: 1 inside `(…)`, `[…]` or `{…}`, else 0;
/// - `inside word`: 1 for a letter or digit (characters) — for words, 1 for alphabetic words;
/// - `capital`: 1 for an upper-case letter (characters) or a word starting with one.
///
/// A line break is `"\n"` for characters and `<eos>` for words.
pub fn text_properties(tokens: &[String], kind: TokenKind) -> Vec<Property> {
    let n = tokens.len();
    let is_break = |t: &str| match kind {
        TokenKind::Char => t == "\n",
        TokenKind::Word => t == crate::data::EOS,
    };
    let mut pos = vec![0.0; n];
    let mut line_len = vec![0.0; n];
    let mut start = 0;
    let mut p = 0.0;
    for (i, t) in tokens.iter().enumerate() {
        pos[i] = p;
        p += 1.0;
        if is_break(t) || i + 1 == n {
            let len = (i + 1 - start) as f64;
            line_len[start..=i].iter_mut().for_each(|v| *v = len);
            start = i + 1;
            p = 0.0;
        }
    }
    let to_end: Vec<f64> = (0..n).map(|i| line_len[i] - 1.0 - pos[i]).collect();
    let (mut quotes, mut brackets) = (vec![0.0; n], vec![0.0; n]);
    let (mut inq, mut depth) = (false, 0i64);
    for (i, t) in tokens.iter().enumerate() {
        match t.as_str() {
            "\"" => inq = !inq,
            "``" => inq = true,
            "''" => inq = false,
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth = (depth - 1).max(0),
            _ => {}
        }
        quotes[i] = f64::from(u8::from(inq || t == "''"));
        brackets[i] = f64::from(u8::from(depth > 0 || matches!(t.as_str(), ")" | "]" | "}")));
    }
    let word: Vec<f64> = tokens
        .iter()
        .map(|t| {
            let w = match kind {
                TokenKind::Char => t.chars().all(char::is_alphanumeric) && !t.is_empty(),
                TokenKind::Word => t.chars().all(char::is_alphabetic) && !t.is_empty(),
            };
            f64::from(u8::from(w))
        })
        .collect();
    let capital: Vec<f64> = tokens
        .iter()
        .map(|t| f64::from(u8::from(t.chars().next().is_some_and(char::is_uppercase))))
        .collect();
    vec![
        Property {
            name: "position in line",
            values: pos,
        },
        Property {
            name: "to end of line",
            values: to_end,
        },
        Property {
            name: "line length",
            values: line_len,
        },
        Property {
            name: "inside quotes",
            values: quotes,
        },
        Property {
            name: "inside brackets",
            values: brackets,
        },
        Property {
            name: "inside word",
            values: word,
        },
        Property {
            name: "capital",
            values: capital,
        },
    ]
}

/// Pearson correlation of `a` and `b` (same length); `None` when either is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len().min(b.len());
    if n < 2 {
        return None;
    }
    let ma = a[..n].iter().sum::<f64>() / n as f64;
    let mb = b[..n].iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (da, db) = (a[i] - ma, b[i] - mb);
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    (saa > 1e-12 && sbb > 1e-12).then(|| sab / (saa * sbb).sqrt())
}

/// A unit's correlation with a property.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitCorrelation {
    /// The property's name.
    pub property: &'static str,
    /// The quantity (`cell`, `hidden`, …).
    pub quantity: &'static str,
    /// The unit, from 0.
    pub unit: usize,
    /// Pearson correlation over the tokens.
    pub r: f64,
}

/// For each property that varies over the text, the `top` units of each state quantity with
/// the largest absolute correlation, strongest first. Properties that are constant in the text
/// (no quotes, say) are left out.
pub fn correlated_units(
    ins: &Inspection,
    properties: &[Property],
    top: usize,
) -> Vec<UnitCorrelation> {
    let mut out = Vec::new();
    for p in properties {
        for q in ins
            .quantities
            .iter()
            .filter(|q| q.kind == QuantityKind::State)
        {
            let mut rs: Vec<UnitCorrelation> = (0..ins.hidden)
                .filter_map(|u| {
                    let v: Vec<f64> = ins.unit(q, u).into_iter().map(f64::from).collect();
                    pearson(&v, &p.values).map(|r| UnitCorrelation {
                        property: p.name,
                        quantity: q.name,
                        unit: u,
                        r,
                    })
                })
                .collect();
            rs.sort_by(|a, b| b.r.abs().total_cmp(&a.r.abs()));
            out.extend(rs.into_iter().take(top));
        }
    }
    out
}

/// How often a gate saturates.
#[derive(Clone, Debug, PartialEq)]
pub struct Saturation {
    /// The gate's name.
    pub gate: &'static str,
    /// Fraction of all its activations (tokens × units) below 0.1.
    pub below: f64,
    /// Fraction above 0.9.
    pub above: f64,
    /// Per unit: fractions of tokens below 0.1 and above 0.9.
    pub per_unit: Vec<(f64, f64)>,
}

/// Saturation of every gate of the inspection: activations below 0.1 ("left saturated") and
/// above 0.9 ("right saturated"), overall and per unit.
pub fn saturation(ins: &Inspection) -> Vec<Saturation> {
    ins.quantities
        .iter()
        .filter(|q| q.kind == QuantityKind::Gate)
        .map(|q| {
            let per_unit: Vec<(f64, f64)> = (0..ins.hidden)
                .map(|u| {
                    let v = ins.unit(q, u);
                    let n = v.len().max(1) as f64;
                    (
                        v.iter().filter(|&&x| x < 0.1).count() as f64 / n,
                        v.iter().filter(|&&x| x > 0.9).count() as f64 / n,
                    )
                })
                .collect();
            let n = per_unit.len().max(1) as f64;
            Saturation {
                gate: q.name,
                below: per_unit.iter().map(|p| p.0).sum::<f64>() / n,
                above: per_unit.iter().map(|p| p.1).sum::<f64>() / n,
                per_unit,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::GruVariant;
    use crate::tasks::lm::{LmConfig, LmInit};

    fn model(cell: CellKind, layers: usize) -> (LanguageModel, Vec<f32>) {
        let m = LanguageModel::new(LmConfig {
            vocab: 5,
            embed: 3,
            cell,
            hidden: 4,
            layers,
            ..LmConfig::default()
        })
        .unwrap();
        let p = m.init_params(LmInit::Uniform(0.5), 3).unwrap();
        (m, p)
    }

    #[test]
    fn lstm_and_gru_quantities_have_their_ranges() {
        let ids = [0, 1, 2, 3, 4, 1, 1, 0];
        let (m, p) = model(CellKind::Lstm, 2);
        let ins = inspect(&m, &p, &ids, 1).unwrap();
        let names: Vec<&str> = ins.quantities.iter().map(|q| q.name).collect();
        assert_eq!(
            names,
            ["input_gate", "forget_gate", "output_gate", "cell", "hidden"]
        );
        for q in &ins.quantities {
            assert_eq!(q.values.len(), 8 * 4);
            if q.kind == QuantityKind::Gate {
                assert!(
                    q.values.iter().all(|v| (0.0..=1.0).contains(v)),
                    "{}",
                    q.name
                );
            }
        }
        // h = o ⊙ tanh(c).
        let (o, c, h) = (
            ins.get("output_gate").unwrap(),
            ins.get("cell").unwrap(),
            ins.get("hidden").unwrap(),
        );
        for i in 0..32 {
            assert!((h.values[i] - o.values[i] * c.values[i].tanh()).abs() < 1e-5);
        }
        let (m, p) = model(CellKind::Gru(GruVariant::ResetAfter), 1);
        let ins = inspect(&m, &p, &ids, 0).unwrap();
        let names: Vec<&str> = ins.quantities.iter().map(|q| q.name).collect();
        assert_eq!(names, ["reset_gate", "update_gate", "hidden"]);
        let sat = saturation(&ins);
        assert_eq!(sat.len(), 2);
        assert!(sat
            .iter()
            .all(|s| s.below + s.above <= 1.0 && s.per_unit.len() == 4));

        assert!(inspect(&m, &p, &ids, 1)
            .unwrap_err()
            .to_string()
            .contains("layer 1"));
        assert!(inspect(&m, &p, &[], 0).is_err());
        assert!(inspect(&m, &p, &[9], 0).is_err());
    }

    /// Below a last layer of its own size the layers read as in the one-width model; the last
    /// layer itself is refused with a message.
    #[test]
    fn layers_below_a_last_layer_of_its_own_size() {
        let ids = [0, 1, 2, 3, 4, 1];
        let (plain, p) = model(CellKind::Lstm, 2);
        let m = LanguageModel::new(LmConfig {
            last_hidden: Some(4),
            ..*plain.config()
        })
        .unwrap();
        let (a, b) = (
            inspect(&plain, &p, &ids, 0).unwrap(),
            inspect(&m, &p, &ids, 0).unwrap(),
        );
        assert_eq!(
            a.get("hidden").unwrap().values,
            b.get("hidden").unwrap().values
        );
        let err = inspect(&m, &p, &ids, 1).unwrap_err().to_string();
        assert!(err.contains("last layer of its own size"), "{err}");
    }

    #[test]
    fn properties_of_a_text() {
        let toks: Vec<String> = "ab \"c\"\nd(e)\n".chars().map(String::from).collect();
        let props = text_properties(&toks, TokenKind::Char);
        let get = |n: &str| props.iter().find(|p| p.name == n).unwrap().values.clone();
        assert_eq!(
            get("position in line"),
            [0., 1., 2., 3., 4., 5., 6., 0., 1., 2., 3., 4.]
        );
        assert_eq!(get("line length")[0], 7.0);
        assert_eq!(get("line length")[8], 5.0);
        assert_eq!(get("to end of line")[6], 0.0);
        assert_eq!(
            get("inside quotes"),
            [0., 0., 0., 1., 1., 0., 0., 0., 0., 0., 0., 0.]
        );
        assert_eq!(
            get("inside brackets"),
            [0., 0., 0., 0., 0., 0., 0., 0., 1., 1., 1., 0.]
        );
        assert_eq!(get("inside word")[..3], [1., 1., 0.]);
        assert_eq!(pearson(&[1., 2., 3.], &[2., 4., 6.]), Some(1.0));
        assert_eq!(pearson(&[1., 2., 3.], &[5., 5., 5.]), None);
        let r = pearson(&[1., 2., 3.], &[3., 2., 1.]).unwrap();
        assert!((r + 1.0).abs() < 1e-12);
    }
}
