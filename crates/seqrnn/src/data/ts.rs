//! The sktime/UEA `.ts` format of the time-series classification archive
//! (timeseriesclassification.com), and per-channel standardisation.
//!
//! A file is header lines starting with `@` (`@problemName`, `@timeStamps false`, `@missing`,
//! `@univariate`, `@dimensions N`, `@equalLength`, `@seriesLength`, `@classLabel true a b c`),
//! comment lines starting with `#`, then `@data` and one case a line: the dimensions separated
//! by `:`, the values of a dimension by `,`, the class label last. All dimensions of one case
//! share a length; cases may differ in length (`@equalLength false`). A missing value is `?`.
//!
//! Values are kept time-major per case: `values[t · C + c]` is channel `c` at step `t`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What is done with a missing value (`?`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FillMissing {
    /// A missing value is an error naming its file, line, dimension and step.
    #[default]
    Refuse,
    /// The channel's mean over the training steps (0 after standardisation).
    Mean,
    /// The last observed value of the same channel in the same case (the first observed one
    /// for leading gaps; the channel's mean when the case has none).
    Previous,
}

/// Whether the cases must carry their class label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    /// Every case ends with a label declared in `@classLabel` (training and scoring).
    Required,
    /// Cases may end with a label or not (prediction); a present one is still checked.
    Optional,
}

/// How a `.ts` file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsOptions {
    /// Whether labels are required.
    pub labels: LabelColumn,
    /// Dimensions every case must have (a trained model's channels), beyond the header's own
    /// `@dimensions`.
    pub dimensions: Option<usize>,
    /// Missing values: refused, or kept as NaN for [`fill_missing`].
    pub missing: FillMissing,
}

/// One case: its values `[len, C]` time-major (NaN where missing), its length and its label.
#[derive(Clone, Debug, PartialEq)]
pub struct TsCase {
    /// `values[t · C + c]`.
    pub values: Vec<f32>,
    /// Steps.
    pub len: usize,
    /// The class label, when the line has one.
    pub label: Option<String>,
    /// 1-based line number in the file.
    pub line: usize,
}

/// A read `.ts` file.
#[derive(Clone, Debug, PartialEq)]
pub struct TsFile {
    /// The file.
    pub path: PathBuf,
    /// `@problemName`, if given.
    pub problem: Option<String>,
    /// Dimensions (channels) `C` of every case.
    pub dimensions: usize,
    /// The labels `@classLabel true …` declares, in order (empty for `@classLabel false`).
    pub class_labels: Vec<String>,
    /// The cases, in file order.
    pub cases: Vec<TsCase>,
}

impl TsFile {
    /// The shortest and longest case.
    pub fn length_range(&self) -> (usize, usize) {
        let lens = self.cases.iter().map(|c| c.len);
        (lens.clone().min().unwrap_or(0), lens.max().unwrap_or(0))
    }

    /// Whether some value is missing (NaN).
    pub fn has_missing(&self) -> bool {
        self.cases
            .iter()
            .any(|c| c.values.iter().any(|v| v.is_nan()))
    }
}

/// The header fields the reader uses.
#[derive(Default)]
struct Header {
    problem: Option<String>,
    dimensions: Option<usize>,
    univariate: Option<bool>,
    equal_length: Option<bool>,
    labels: Option<Vec<String>>,
}

/// Reads the `.ts` file at `path`.
///
/// # Errors
/// [`Error::Io`] when it cannot be read; [`Error::Data`] naming the file (and the line) when it
/// is empty or not UTF-8, has no `@data` or no cases, declares time stamps or a regression
/// target, or a case has dimensions of different lengths, another number of dimensions than
/// the header (or `options.dimensions`), a value that is not a finite number, a missing value
/// while `options.missing` refuses them, or a label not declared in `@classLabel` (or none
/// where one is required).
pub fn read_ts(path: &Path, options: &TsOptions) -> Result<TsFile> {
    let bytes = std::fs::read(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let bad = |message: String| Error::Data {
        path: path.to_path_buf(),
        message,
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        bad(format!("line {line}: not valid UTF-8"))
    })?;
    if text.trim().is_empty() {
        return Err(bad("the file is empty".into()));
    }
    let mut header = Header::default();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let mut data_seen = false;
    for (no, line) in lines.by_ref() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with('@') {
            return Err(bad(format!(
                "line {no}: a case before @data (header lines start with `@`)"
            )));
        }
        if header_line(&mut header, line).map_err(|m| bad(format!("line {no}: {m}")))? {
            data_seen = true;
            break;
        }
    }
    if !data_seen {
        return Err(bad("no @data line: the cases follow `@data`".into()));
    }
    let declared = header.dimensions.or(match header.univariate {
        Some(true) => Some(1),
        _ => None,
    });
    if let (Some(h), Some(o)) = (declared, options.dimensions) {
        if h != o {
            return Err(bad(format!(
                "the header declares {h} dimension(s) but the model reads {o}"
            )));
        }
    }
    let mut reader = CaseReader {
        dims: declared.or(options.dimensions),
        labels: header.labels.clone().unwrap_or_default(),
        label_declared: header.labels.is_some(),
        options,
    };
    let mut cases = Vec::new();
    for (no, line) in lines {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let case = reader
            .case(line, no)
            .map_err(|m| bad(format!("line {no}: {m}")))?;
        if header.equal_length == Some(true) {
            if let Some(first) = cases.first().map(|c: &TsCase| c.len) {
                if case.len != first {
                    return Err(bad(format!(
                        "line {no}: {} steps, but @equalLength true and the first case has {first}",
                        case.len
                    )));
                }
            }
        }
        cases.push(case);
    }
    if cases.is_empty() {
        return Err(bad("no cases after @data".into()));
    }
    Ok(TsFile {
        path: path.to_path_buf(),
        problem: header.problem,
        dimensions: reader.dims.unwrap_or(1),
        class_labels: header.labels.unwrap_or_default(),
        cases,
    })
}

/// Reads one header line into `h`; returns whether it was `@data`.
fn header_line(h: &mut Header, line: &str) -> std::result::Result<bool, String> {
    let mut words = line.split_whitespace();
    let key = words.next().unwrap_or("@").to_ascii_lowercase();
    let rest: Vec<&str> = words.collect();
    let flag = |what: &str| -> std::result::Result<bool, String> {
        match rest.first().map(|w| w.to_ascii_lowercase()).as_deref() {
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            _ => Err(format!("{what} should be `true` or `false`")),
        }
    };
    match key.as_str() {
        "@data" => return Ok(true),
        "@problemname" => h.problem = Some(rest.join(" ")),
        "@timestamps" if flag("@timeStamps")? => {
            return Err("time stamps (@timeStamps true) are not supported".into())
        }
        "@targetlabel" if flag("@targetLabel")? => {
            return Err("a regression target (@targetLabel true) is not a class label".into())
        }
        "@univariate" => h.univariate = Some(flag("@univariate")?),
        "@equallength" => h.equal_length = Some(flag("@equalLength")?),
        "@dimension" | "@dimensions" => {
            let n = rest.first().and_then(|w| w.parse::<usize>().ok());
            match n {
                Some(n) if n > 0 => h.dimensions = Some(n),
                _ => return Err("@dimensions should be a positive whole number".into()),
            }
        }
        "@classlabel" => {
            h.labels = match flag("@classLabel")? {
                true if rest.len() < 2 => {
                    return Err("@classLabel true names no labels".into());
                }
                true => Some(rest[1..].iter().map(|w| w.to_string()).collect()),
                false => None,
            }
        }
        // `@missing`, `@seriesLength`, `@timeStamps false` and unknown keys change nothing.
        _ => {}
    }
    Ok(false)
}

/// Reads the cases after `@data`.
struct CaseReader<'a> {
    /// The dimensions every case has (the first case's when the header names none).
    dims: Option<usize>,
    labels: Vec<String>,
    label_declared: bool,
    options: &'a TsOptions,
}

impl CaseReader<'_> {
    fn case(&mut self, line: &str, no: usize) -> std::result::Result<TsCase, String> {
        let fields: Vec<&str> = line.split(':').collect();
        let n = fields.len();
        let has_label = match (self.options.labels, self.dims) {
            (LabelColumn::Required, _) => true,
            (LabelColumn::Optional, Some(d)) => n == d + 1,
            (LabelColumn::Optional, None) => self.label_declared && n > 1,
        };
        if has_label && !self.label_declared {
            return Err(
                "the file declares no labels (`@classLabel true …`), so its cases \
                        cannot be scored"
                    .into(),
            );
        }
        let (values, label) = match has_label {
            true => (&fields[..n - 1], Some(fields[n - 1].trim())),
            false => (&fields[..], None),
        };
        let dims = *self.dims.get_or_insert(values.len());
        if values.len() != dims || dims == 0 {
            let what = if has_label { " and a label" } else { "" };
            return Err(format!(
                "{} dimension(s){what}, expected {dims}",
                values.len()
            ));
        }
        if let Some(l) = label {
            if !self.labels.iter().any(|d| d == l) {
                return Err(format!(
                    "label `{l}` is not declared in @classLabel ({})",
                    self.labels.join(" ")
                ));
            }
        }
        let mut columns = Vec::with_capacity(dims);
        for (d, field) in values.iter().enumerate() {
            let col = self.dimension(field, d + 1)?;
            if let Some(first) = columns.first().map(Vec::len) {
                if col.len() != first {
                    return Err(format!(
                        "dimension {} has {} values but dimension 1 has {first} (the \
                         dimensions of a case share one length)",
                        d + 1,
                        col.len()
                    ));
                }
            }
            columns.push(col);
        }
        let len = columns[0].len();
        let mut out = vec![0.0; len * dims];
        for (c, col) in columns.iter().enumerate() {
            for (t, v) in col.iter().enumerate() {
                out[t * dims + c] = *v;
            }
        }
        Ok(TsCase {
            values: out,
            len,
            label: label.map(str::to_string),
            line: no,
        })
    }

    /// The values of dimension `d` (1-based) of a case.
    fn dimension(&self, field: &str, d: usize) -> std::result::Result<Vec<f32>, String> {
        if field.trim().is_empty() {
            return Err(format!("dimension {d} has no values"));
        }
        let mut col = Vec::new();
        for (t, v) in field.split(',').enumerate() {
            let v = v.trim();
            if v == "?" {
                if self.options.missing == FillMissing::Refuse {
                    return Err(format!(
                        "missing value `?` (dimension {d}, step {}); missing values are refused \
                         unless a fill (mean or previous) is chosen",
                        t + 1
                    ));
                }
                col.push(f32::NAN);
                continue;
            }
            match v.parse::<f32>() {
                Ok(x) if x.is_finite() => col.push(x),
                _ => {
                    return Err(format!(
                        "`{v}` is not a number (dimension {d}, step {})",
                        t + 1
                    ))
                }
            }
        }
        Ok(col)
    }
}

/// Fills the missing values (NaN) of a case `values[len, C]` by `fill`: [`FillMissing::Previous`]
/// carries the last observed value of the channel forward (the first observed one backward over
/// a leading gap); what stays missing (every value with [`FillMissing::Mean`], a channel with
/// no observed value) becomes `mean[c]`.
pub fn fill_missing(values: &mut [f32], mean: &[f32], fill: FillMissing) {
    let c = mean.len();
    if c == 0 {
        return;
    }
    let len = values.len() / c;
    if fill == FillMissing::Previous {
        for ch in 0..c {
            let first = (0..len).map(|t| values[t * c + ch]).find(|v| !v.is_nan());
            let mut last = first;
            for t in 0..len {
                let v = &mut values[t * c + ch];
                match (v.is_nan(), last) {
                    (true, Some(p)) => *v = p,
                    (false, _) => last = Some(*v),
                    (true, None) => {}
                }
            }
        }
    }
    for (i, v) in values.iter_mut().enumerate() {
        if v.is_nan() {
            *v = mean[i % c];
        }
    }
}

/// Per-channel mean and standard deviation over every observed time step of a set of cases.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    /// Mean of each channel.
    pub mean: Vec<f32>,
    /// Standard deviation of each channel (population; 1 for a constant channel).
    pub std: Vec<f32>,
}

impl ChannelStats {
    /// The statistics of `cases` (each `[len, C]` time-major, NaN where missing) over all their
    /// steps, in f64.
    ///
    /// # Errors
    /// [`Error::Config`] when `channels` is 0 or a case is not a whole number of steps.
    pub fn fit<'c>(cases: impl Iterator<Item = &'c [f32]>, channels: usize) -> Result<Self> {
        if channels == 0 {
            return Err(Error::Config("statistics of zero channels".into()));
        }
        let mut sum = vec![0.0f64; channels];
        let mut sq = vec![0.0f64; channels];
        let mut n = vec![0usize; channels];
        for case in cases {
            if case.len() % channels != 0 {
                return Err(Error::Config(format!(
                    "a case of {} values is not a whole number of {channels}-channel steps",
                    case.len()
                )));
            }
            for (i, &v) in case.iter().enumerate() {
                if !v.is_nan() {
                    let c = i % channels;
                    sum[c] += f64::from(v);
                    sq[c] += f64::from(v) * f64::from(v);
                    n[c] += 1;
                }
            }
        }
        let mean: Vec<f64> = (0..channels).map(|c| sum[c] / n[c].max(1) as f64).collect();
        let std = (0..channels).map(|c| {
            let var = (sq[c] / n[c].max(1) as f64 - mean[c] * mean[c]).max(0.0);
            match var.sqrt() {
                s if s > 1e-8 => s as f32,
                _ => 1.0,
            }
        });
        Ok(ChannelStats {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: std.collect(),
        })
    }

    /// Channels `C`.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Standardises `values[len, C]` in place: `(x − mean) / std` per channel (NaN stays NaN).
    pub fn apply(&self, values: &mut [f32]) {
        let c = self.channels();
        for (i, v) in values.iter_mut().enumerate() {
            *v = (*v - self.mean[i % c]) / self.std[i % c];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_fills_forward_then_backward_then_mean() {
        // Two channels, four steps: channel 0 has a leading and an inner gap, channel 1 none
        // observed.
        let nan = f32::NAN;
        let mut v = vec![nan, nan, 2.0, nan, nan, nan, 5.0, nan];
        fill_missing(&mut v, &[0.5, -1.0], FillMissing::Previous);
        assert_eq!(v, [2.0, -1.0, 2.0, -1.0, 2.0, -1.0, 5.0, -1.0]);
        let mut v = vec![nan, 3.0];
        fill_missing(&mut v, &[0.5, -1.0], FillMissing::Mean);
        assert_eq!(v, [0.5, 3.0]);
    }

    #[test]
    fn stats_skip_missing_and_keep_constant_channels() {
        let a = [1.0, 7.0, 3.0, 7.0];
        let b = [f32::NAN, 7.0, 5.0, 7.0];
        let s = ChannelStats::fit([&a[..], &b[..]].into_iter(), 2).unwrap();
        assert_eq!(s.mean, [3.0, 7.0]);
        // Population std of 1, 3, 5.
        assert!((s.std[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(s.std[1], 1.0);
        let mut x = vec![5.0, 8.0];
        s.apply(&mut x);
        assert!((x[0] - 2.0 / (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(x[1], 1.0);
        assert!(ChannelStats::fit([&a[..3]].into_iter(), 2).is_err());
    }
}
