use super::*;

/// Which columns go in and which come out (the Informer benchmark's settings).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Multivariate: every feature in, every feature out.
    #[default]
    M,
    /// Univariate: the target column(s) in, the same out.
    S,
    /// Every feature in, the target column(s) out.
    MS,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "M" | "m" => Ok(Mode::M),
            "S" | "s" => Ok(Mode::S),
            "MS" | "ms" => Ok(Mode::MS),
            _ => Err(Error::Config(format!(
                "unknown mode `{s}` (expected M, S or MS)"
            ))),
        }
    }
}

/// How the rows are split into training, validation and test parts, in time order.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Split {
    /// The ETT convention of Informer: 12 / 4 / 4 months of hourly rows (8640 / 2880 / 2880).
    Informer,
    /// Fractions of the rows, e.g. `0.7,0.1,0.2`; when they sum to 1 the test part takes what
    /// rounding leaves.
    Fractions([f64; 3]),
    /// Row counts, e.g. `8640,2880,2880`.
    Rows([usize; 3]),
}

impl Default for Split {
    fn default() -> Self {
        Split::Fractions([0.7, 0.1, 0.2])
    }
}

impl Split {
    /// Training, validation and test row counts for a table of `rows` rows.
    pub fn counts(&self, rows: usize) -> Result<[usize; 3]> {
        let counts = match *self {
            Split::Informer => [8640, 2880, 2880],
            Split::Rows(c) => c,
            Split::Fractions(f) => {
                let n = rows as f64;
                let train = (f[0] * n).floor() as usize;
                let valid = (f[1] * n).floor() as usize;
                let test = if (f.iter().sum::<f64>() - 1.0).abs() < 1e-9 {
                    rows.saturating_sub(train + valid)
                } else {
                    (f[2] * n).floor() as usize
                };
                [train, valid, test]
            }
        };
        let need: usize = counts.iter().sum();
        if need > rows {
            return Err(Error::Config(format!(
                "split {} needs {need} rows, the table has {rows}",
                String::from(*self)
            )));
        }
        Ok(counts)
    }

    /// The row ranges for `rows` rows and lookback `lookback`.
    pub fn ranges(&self, rows: usize, lookback: usize) -> Result<SplitRanges> {
        let [a, b, c] = self.counts(rows)?;
        if a < lookback {
            return Err(Error::Config(format!(
                "the training split has {a} rows, fewer than the lookback {lookback}"
            )));
        }
        Ok(SplitRanges {
            train: 0..a,
            valid: a - lookback..a + b,
            test: a + b - lookback..a + b + c,
        })
    }
}

impl std::str::FromStr for Split {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "informer" {
            return Ok(Split::Informer);
        }
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let bad = || {
            Error::Config(format!(
                "split `{s}` is not `informer`, three fractions (0.7,0.1,0.2) or three row counts (8640,2880,2880)"
            ))
        };
        if parts.len() != 3 {
            return Err(bad());
        }
        if parts.iter().all(|p| p.parse::<usize>().is_ok()) {
            let mut c = [0; 3];
            for (v, p) in c.iter_mut().zip(&parts) {
                *v = p.parse().map_err(|_| bad())?;
            }
            if c[0] == 0 || c[1] == 0 || c[2] == 0 {
                return Err(Error::Config(format!(
                    "split `{s}`: every part needs at least one row"
                )));
            }
            return Ok(Split::Rows(c));
        }
        let mut f = [0.0; 3];
        for (v, p) in f.iter_mut().zip(&parts) {
            *v = p.parse().map_err(|_| bad())?;
        }
        if f.iter().any(|v| !(*v > 0.0 && *v < 1.0)) || f.iter().sum::<f64>() > 1.0 + 1e-9 {
            return Err(Error::Config(format!(
                "split `{s}`: fractions must be in (0, 1) and sum to at most 1"
            )));
        }
        Ok(Split::Fractions(f))
    }
}

impl From<Split> for String {
    fn from(s: Split) -> String {
        match s {
            Split::Informer => "informer".into(),
            Split::Fractions(f) => format!("{},{},{}", f[0], f[1], f[2]),
            Split::Rows(c) => format!("{},{},{}", c[0], c[1], c[2]),
        }
    }
}

impl TryFrom<String> for Split {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// Row ranges a split's windows may use (validation and test start `L` rows early).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitRanges {
    /// Training rows (also the rows the standardisation statistics come from).
    pub train: Range<usize>,
    /// Validation rows, from `L` rows before its first target row.
    pub valid: Range<usize>,
    /// Test rows, from `L` rows before its first target row.
    pub test: Range<usize>,
}

/// Per-column standardisation `z = (v − mean) / std`, statistics of the training rows only
/// (population standard deviation, as scikit-learn's `StandardScaler`; a constant column gets
/// std 1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Mean per input column.
    pub mean: Vec<f64>,
    /// Standard deviation per input column.
    pub std: Vec<f64>,
}

impl Scaler {
    /// Statistics of `rows` of the given table columns.
    pub fn fit(table: &Table, cols: &[usize], rows: Range<usize>) -> Scaler {
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0.0; cols.len()];
        let mut std = vec![0.0; cols.len()];
        for (k, &c) in cols.iter().enumerate() {
            let m = rows.clone().map(|r| table.get(r, c) as f64).sum::<f64>() / n;
            let var = rows
                .clone()
                .map(|r| (table.get(r, c) as f64 - m).powi(2))
                .sum::<f64>()
                / n;
            mean[k] = m;
            std[k] = if var > 0.0 { var.sqrt() } else { 1.0 };
        }
        Scaler { mean, std }
    }

    /// Standardises value `v` of column `k`.
    pub fn apply(&self, k: usize, v: f64) -> f64 {
        (v - self.mean[k]) / self.std[k]
    }

    /// Undoes [`Scaler::apply`].
    pub fn undo(&self, k: usize, z: f64) -> f64 {
        z * self.std[k] + self.mean[k]
    }
}

/// What each window is expressed relative to, before it enters the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anchor {
    /// Standardised values as they are.
    None,
    /// Each window minus its last input row, column by column (NLinear's normalisation): the
    /// model predicts the change from the last observed value, which is added back to its
    /// forecasts. Robust to the level shifts between training and test periods.
    #[default]
    Last,
}

/// Which columns a forecaster reads and predicts, and how they are scaled: everything needed to
/// turn a table into model inputs again (saved in the run's `config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// Setting.
    pub mode: Mode,
    /// Input columns, in model order.
    pub inputs: Vec<String>,
    /// Forecast columns, each also an input column.
    pub targets: Vec<String>,
    /// The date (or time) column, if any, copied into forecasts.
    pub date_column: Option<String>,
    /// Standardisation of the input columns.
    pub scaler: Scaler,
    /// Window normalisation.
    #[serde(default)]
    pub anchor: Anchor,
}

impl ColumnSpec {
    /// Chooses columns for `mode` from `table`: `features` (default every numeric column) and
    /// `targets` (default the last feature), and fits the scaler on `train_rows`.
    ///
    /// # Errors
    /// [`Error::Data`] for a missing or non-numeric column; [`Error::Config`] for a target that
    /// is not among the features in `MS` mode, or an empty feature list.
    pub fn choose(
        table: &Table,
        mode: Mode,
        features: Option<&[String]>,
        targets: Option<&[String]>,
        date_column: Option<&str>,
        train_rows: Range<usize>,
    ) -> Result<ColumnSpec> {
        if let Some(d) = date_column {
            if table.text_column(d).is_none() && table.column(d).is_err() {
                return Err(Error::Data {
                    path: table.path.clone(),
                    message: format!("no date column `{d}`"),
                });
            }
        }
        let features: Vec<String> = match features {
            Some(f) => {
                for c in f {
                    table.column(c)?;
                }
                f.to_vec()
            }
            None => table
                .columns
                .iter()
                .filter(|c| Some(c.as_str()) != date_column)
                .cloned()
                .collect(),
        };
        if features.is_empty() {
            return Err(Error::Data {
                path: table.path.clone(),
                message: "no numeric columns to forecast".into(),
            });
        }
        let targets: Vec<String> = match targets {
            Some(t) if !t.is_empty() => {
                for c in t {
                    table.column(c)?;
                }
                t.to_vec()
            }
            _ => vec![features[features.len() - 1].clone()],
        };
        let (inputs, targets) = match mode {
            Mode::M => (features.clone(), features),
            Mode::S => (targets.clone(), targets),
            Mode::MS => {
                if let Some(t) = targets.iter().find(|t| !features.contains(t)) {
                    return Err(Error::Config(format!(
                        "target `{t}` is not among the features ({})",
                        features.join(", ")
                    )));
                }
                (features, targets)
            }
        };
        let cols = inputs
            .iter()
            .map(|c| table.column(c))
            .collect::<Result<Vec<_>>>()?;
        let scaler = Scaler::fit(table, &cols, train_rows);
        let date_column = match date_column {
            Some(d) => Some(d.to_string()),
            None => table
                .text
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("date"))
                .map(|(n, _)| n.clone()),
        };
        Ok(ColumnSpec {
            mode,
            inputs,
            targets,
            date_column,
            scaler,
            anchor: Anchor::default(),
        })
    }

    /// Position of each target among the inputs.
    pub fn target_index(&self) -> Vec<usize> {
        self.targets
            .iter()
            .map(|t| self.inputs.iter().position(|i| i == t).unwrap_or(0))
            .collect()
    }
}

/// A table's selected columns, standardised: `z[rows, I]`, with the target positions.
#[derive(Clone, Debug)]
pub struct Series {
    /// Standardised inputs `z[rows, I]`.
    pub z: Vec<f32>,
    /// Rows.
    pub rows: usize,
    /// Input columns `I`.
    pub inputs: usize,
    /// Position of each target among the inputs (`C` values).
    pub targets: Vec<usize>,
    /// Window normalisation.
    pub anchor: Anchor,
}

impl Series {
    /// Standardises the columns of `spec` from `table`.
    pub fn new(table: &Table, spec: &ColumnSpec) -> Result<Series> {
        let cols = spec
            .inputs
            .iter()
            .map(|c| table.column(c))
            .collect::<Result<Vec<_>>>()?;
        let mut z = Vec::with_capacity(table.rows * cols.len());
        for r in 0..table.rows {
            for (k, &c) in cols.iter().enumerate() {
                z.push(spec.scaler.apply(k, table.get(r, c) as f64) as f32);
            }
        }
        Ok(Series {
            z,
            rows: table.rows,
            inputs: cols.len(),
            targets: spec.target_index(),
            anchor: spec.anchor,
        })
    }

    /// Start rows of every window of `lookback + horizon` rows inside `range`.
    pub fn windows(range: Range<usize>, lookback: usize, horizon: usize) -> Vec<usize> {
        let span = lookback + horizon;
        if range.len() < span {
            return Vec::new();
        }
        (range.start..=range.end - span).collect()
    }

    /// The value window `s` is expressed relative to, for input column `col` (0 without anchor).
    pub fn anchor_value(&self, s: usize, lookback: usize, col: usize) -> f32 {
        match self.anchor {
            Anchor::None => 0.0,
            Anchor::Last => self.z[(s + lookback - 1) * self.inputs + col],
        }
    }

    /// Fills `x[L, B, I]` and `y[B, K, C]` for windows starting at `starts` (`B` of them),
    /// relative to each window's anchor ([`Series::anchor_value`]).
    pub fn gather(
        &self,
        starts: &[usize],
        lookback: usize,
        horizon: usize,
        x: &mut [f32],
        y: &mut [f32],
    ) {
        let (b, i, c) = (starts.len(), self.inputs, self.targets.len());
        for (r, &s) in starts.iter().enumerate() {
            for t in 0..lookback {
                let src = &self.z[(s + t) * i..(s + t + 1) * i];
                let dst = &mut x[(t * b + r) * i..(t * b + r + 1) * i];
                for (col, (d, v)) in dst.iter_mut().zip(src).enumerate() {
                    *d = v - self.anchor_value(s, lookback, col);
                }
            }
            for k in 0..horizon {
                for (j, &col) in self.targets.iter().enumerate() {
                    y[(r * horizon + k) * c + j] =
                        self.z[(s + lookback + k) * i + col] - self.anchor_value(s, lookback, col);
                }
            }
        }
    }

    /// Fills `x[L, 1, I]` with the last `lookback` rows (the window for forecasting the
    /// future), relative to its anchor; returns the anchor of each input column.
    pub fn last_window(&self, lookback: usize, x: &mut [f32]) -> Vec<f32> {
        let (i, s) = (self.inputs, self.rows - lookback);
        let anchors: Vec<f32> = (0..i).map(|c| self.anchor_value(s, lookback, c)).collect();
        x.copy_from_slice(&self.z[s * i..self.rows * i]);
        for row in x.chunks_exact_mut(i) {
            row.iter_mut().zip(&anchors).for_each(|(v, a)| *v -= a);
        }
        anchors
    }
}
