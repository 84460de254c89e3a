//! The per-epoch metrics file of a training run (`metrics.csv`).
//!
//! The file is plain CSV: the header [`METRICS_HEADER`] and one line per finished epoch.
//! Floats are written with Rust's shortest round-trip formatting, so reading a file back
//! gives exactly the values that were written (including `NaN` and `inf`).

use std::fmt::Write as _;
use std::path::Path;

use super::write_atomic;
use crate::error::{Error, Result};

/// One row of a run's `metrics.csv`: one per finished epoch.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// The epoch number, counted from 1.
    pub epoch: usize,
    /// The learning rate used in this epoch.
    pub lr: f64,
    /// Perplexity on the training data over this epoch.
    pub train_ppl: f64,
    /// Perplexity on the validation data after this epoch.
    pub valid_ppl: f64,
    /// Training throughput in this epoch, in tokens per second.
    pub tokens_per_s: f64,
    /// Wall-clock seconds of this epoch (training and validation).
    pub seconds: f64,
    /// Cumulative number of training tokens seen at the end of this epoch.
    pub tokens_seen: u64,
}

/// The header line of `metrics.csv`, naming the columns in order.
pub const METRICS_HEADER: &str = "epoch,lr,train_ppl,valid_ppl,tokens_per_s,seconds,tokens_seen";

/// The column names of [`METRICS_HEADER`], in order.
const COLUMNS: [&str; 7] = [
    "epoch",
    "lr",
    "train_ppl",
    "valid_ppl",
    "tokens_per_s",
    "seconds",
    "tokens_seen",
];

/// Writes the header and one line per row to `path`, atomically.
///
/// The text goes to `path` + `".tmp"` in the same folder, is flushed and synced, and then
/// renamed over `path`, so a reader never sees a half-written file.
///
/// # Errors
/// [`Error::Io`] when the file cannot be written or renamed.
pub fn write_metrics(path: &Path, rows: &[EpochMetrics]) -> Result<()> {
    let mut text = String::with_capacity(METRICS_HEADER.len() + 1 + rows.len() * 80);
    text.push_str(METRICS_HEADER);
    text.push('\n');
    for r in rows {
        // Display for f64 prints the shortest string that parses back to the same value.
        let _ = writeln!(
            text,
            "{},{},{},{},{},{},{}",
            r.epoch, r.lr, r.train_ppl, r.valid_ppl, r.tokens_per_s, r.seconds, r.tokens_seen
        );
    }
    write_atomic(path, text.as_bytes())
}

/// Reads a `metrics.csv` written by [`write_metrics`].
///
/// Blank lines are ignored, and so are spaces around fields and Windows line endings.
///
/// # Errors
/// - [`Error::Io`] when the file cannot be read (for example, it does not exist);
/// - [`Error::Data`] when the file is not UTF-8, its first line is not [`METRICS_HEADER`],
///   or a row has the wrong number of fields or a field that is not a number; the message
///   gives the line number and, for a bad field, the column name.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    let data_err = |message: String| Error::Data {
        path: path.to_path_buf(),
        message,
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        data_err(format!("line {line} is not valid UTF-8 text."))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);

    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());

    match lines.next() {
        None => {
            return Err(data_err(format!(
                "the file is empty; expected the header `{METRICS_HEADER}` on line 1."
            )))
        }
        Some((n, header)) => {
            let fields: Vec<&str> = header.split(',').map(str::trim).collect();
            if fields != COLUMNS {
                return Err(data_err(format!(
                    "line {n} is `{}`, but a metrics file must start with the header `{METRICS_HEADER}`.",
                    shorten(header)
                )));
            }
        }
    }

    let mut rows = Vec::new();
    for (n, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != COLUMNS.len() {
            return Err(data_err(format!(
                "line {n} has {} fields, but the header names {} columns.",
                fields.len(),
                COLUMNS.len()
            )));
        }
        let float = |i: usize| -> Result<f64> {
            fields[i].parse::<f64>().map_err(|_| {
                data_err(format!(
                    "line {n}, column `{}`: `{}` is not a number.",
                    COLUMNS[i],
                    shorten(fields[i])
                ))
            })
        };
        let count = |i: usize| -> Result<u64> {
            fields[i].parse::<u64>().map_err(|_| {
                data_err(format!(
                    "line {n}, column `{}`: `{}` is not a non-negative whole number.",
                    COLUMNS[i],
                    shorten(fields[i])
                ))
            })
        };
        let epoch = count(0)?;
        let epoch = usize::try_from(epoch).map_err(|_| {
            data_err(format!(
                "line {n}, column `epoch`: {epoch} is too large for this platform."
            ))
        })?;
        rows.push(EpochMetrics {
            epoch,
            lr: float(1)?,
            train_ppl: float(2)?,
            valid_ppl: float(3)?,
            tokens_per_s: float(4)?,
            seconds: float(5)?,
            tokens_seen: count(6)?,
        });
    }
    Ok(rows)
}

/// Cuts a quoted piece of file content down to a readable length for an error message.
fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// The timing columns of any run's `metrics.csv` (`tokens_per_s` or `examples_per_s`, and
/// `seconds`), one pair per row; empty when the file is missing or has no such columns, and a
/// row's unreadable field reads as 0.
pub fn read_timings(path: &Path) -> Vec<(f64, f64)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let col = |names: &[&str]| header.iter().position(|h| names.contains(h));
    let (Some(per_s), Some(secs)) = (col(&["tokens_per_s", "examples_per_s"]), col(&["seconds"]))
    else {
        return Vec::new();
    };
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            let x = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            (x(per_s), x(secs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_dir() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("seqrnn-metrics-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sample() -> Vec<EpochMetrics> {
        vec![
            EpochMetrics {
                epoch: 1,
                lr: 1.0,
                train_ppl: 273.25,
                valid_ppl: 180.5,
                tokens_per_s: 51234.75,
                seconds: 18.2,
                tokens_seen: 929_589,
            },
            EpochMetrics {
                epoch: 2,
                lr: 0.0078125,
                train_ppl: 114.523,
                valid_ppl: 0.1 + 0.2,
                tokens_per_s: 1e-7,
                seconds: 1.0 / 3.0,
                tokens_seen: u64::MAX,
            },
        ]
    }

    fn data_message(err: Error) -> String {
        match err {
            Error::Data { message, .. } => message,
            other => panic!("expected Error::Data, got {other:?}"),
        }
    }

    fn read_text(text: &str) -> Result<Vec<EpochMetrics>> {
        let dir = temp_dir();
        let path = dir.join("metrics.csv");
        std::fs::write(&path, text).unwrap();
        read_metrics(&path)
    }

    #[test]
    fn round_trip_is_exact() {
        let dir = temp_dir();
        let path = dir.join("metrics.csv");
        let rows = sample();
        write_metrics(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&format!("{METRICS_HEADER}\n")));
        assert!(text.contains(",0.0078125,114.523,"), "{text}");
        assert_eq!(read_metrics(&path).unwrap(), rows);
    }

    #[test]
    fn non_finite_values_round_trip() {
        let dir = temp_dir();
        let path = dir.join("metrics.csv");
        let mut rows = sample();
        rows[0].valid_ppl = f64::INFINITY;
        rows[1].train_ppl = f64::NAN;
        write_metrics(&path, &rows).unwrap();
        let back = read_metrics(&path).unwrap();
        assert_eq!(back[0], rows[0]);
        assert!(back[1].train_ppl.is_nan());
    }

    #[test]
    fn empty_table_round_trips() {
        let dir = temp_dir();
        let path = dir.join("metrics.csv");
        write_metrics(&path, &[]).unwrap();
        assert_eq!(read_metrics(&path).unwrap(), vec![]);
    }

    #[test]
    fn atomic_write_leaves_no_tmp_and_replaces() {
        let dir = temp_dir();
        let path = dir.join("metrics.csv");
        write_metrics(&path, &sample()).unwrap();
        write_metrics(&path, &sample()[..1]).unwrap();
        assert_eq!(read_metrics(&path).unwrap(), sample()[..1].to_vec());
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["metrics.csv".to_string()]);
    }

    #[test]
    fn write_into_missing_folder_is_io_error() {
        let dir = temp_dir();
        let path = dir.join("no-such-folder").join("metrics.csv");
        let err = write_metrics(&path, &sample()).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    }

    #[test]
    fn missing_file_is_io_error() {
        let dir = temp_dir();
        let path = dir.join("absent.csv");
        match read_metrics(&path).unwrap_err() {
            Error::Io {
                path: p,
                cause: source,
            } => {
                assert_eq!(p, path);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected Error::Io, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_is_missing_header() {
        let msg = data_message(read_text("").unwrap_err());
        assert!(msg.contains("empty") && msg.contains("header"), "{msg}");
    }

    #[test]
    fn wrong_header_is_reported() {
        let msg = data_message(read_text("epoch,lr,ppl\n1,1,2\n").unwrap_err());
        assert!(
            msg.contains("line 1") && msg.contains(METRICS_HEADER),
            "{msg}"
        );
        // A file with no header: the first row is reported as the bad header.
        let msg = data_message(read_text("1,1,2,3,4,5,6\n").unwrap_err());
        assert!(msg.contains("line 1") && msg.contains("header"), "{msg}");
    }

    #[test]
    fn wrong_field_count_is_reported() {
        let text = format!("{METRICS_HEADER}\n1,1,2,3,4,5,6\n2,1,2,3,4,5\n");
        let msg = data_message(read_text(&text).unwrap_err());
        assert!(msg.contains("line 3") && msg.contains("6 fields"), "{msg}");
        let text = format!("{METRICS_HEADER}\n1,1,2,3,4,5,6,7\n");
        let msg = data_message(read_text(&text).unwrap_err());
        assert!(msg.contains("line 2") && msg.contains("8 fields"), "{msg}");
    }

    #[test]
    fn non_numeric_field_names_line_and_column() {
        let text = format!("{METRICS_HEADER}\n1,1,2,3,4,5,6\n2,0.5,abc,3,4,5,6\n");
        let msg = data_message(read_text(&text).unwrap_err());
        assert!(
            msg.contains("line 3") && msg.contains("`train_ppl`") && msg.contains("abc"),
            "{msg}"
        );
        let text = format!("{METRICS_HEADER}\n1.5,1,2,3,4,5,6\n");
        let msg = data_message(read_text(&text).unwrap_err());
        assert!(msg.contains("line 2") && msg.contains("`epoch`"), "{msg}");
        let text = format!("{METRICS_HEADER}\n1,1,2,3,4,5,-6\n");
        let msg = data_message(read_text(&text).unwrap_err());
        assert!(
            msg.contains("line 2") && msg.contains("`tokens_seen`"),
            "{msg}"
        );
        let text = format!("{METRICS_HEADER}\n1,1,2,3,4,,6\n");
        let msg = data_message(read_text(&text).unwrap_err());
        assert!(msg.contains("line 2") && msg.contains("`seconds`"), "{msg}");
    }

    #[test]
    fn tolerates_crlf_blank_lines_and_bom() {
        let text = format!("\u{feff}{METRICS_HEADER}\r\n1, 0.5 ,2,3,4,5,6\r\n\r\n");
        let rows = read_text(&text).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].lr, 0.5);
        assert_eq!(rows[0].tokens_seen, 6);
    }

    #[test]
    fn invalid_utf8_is_data_error() {
        let dir = temp_dir();
        let path = dir.join("metrics.csv");
        let mut bytes = format!("{METRICS_HEADER}\n").into_bytes();
        bytes.extend_from_slice(b"1,\xff,2,3,4,5,6\n");
        std::fs::write(&path, bytes).unwrap();
        let msg = data_message(read_metrics(&path).unwrap_err());
        assert!(msg.contains("line 2") && msg.contains("UTF-8"), "{msg}");
    }
}
