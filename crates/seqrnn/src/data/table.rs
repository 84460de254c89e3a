//! Numeric tables from CSV files (time series): a header line, one row per time step.
//!
//! Fields are separated by commas; a field may be quoted with `"` (a doubled `""` inside quotes
//! is one quote), as RFC 4180. Surrounding spaces of unquoted fields are ignored. A column is
//! numeric when its value in the first data row parses as a number; every later value of a
//! numeric column must parse too (an error names the line and column otherwise). Other columns
//! (dates, names) are kept as text.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A table read from CSV: the numeric columns as `values[rows, cols]` and the text columns
/// (e.g. a date column) kept as strings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// The file it came from (for messages).
    pub path: PathBuf,
    /// Names of the numeric columns, in file order.
    pub columns: Vec<String>,
    /// `values[rows, columns.len()]`, row-major.
    pub values: Vec<f32>,
    /// Text columns by name, each `rows` strings.
    pub text: Vec<(String, Vec<String>)>,
    /// Number of data rows.
    pub rows: usize,
}

impl Table {
    /// Reads a CSV file with a header line, in UTF-8 (a byte-order mark at the start, as
    /// spreadsheets write, is skipped).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::NotUtf8`] when it is not UTF-8;
    /// [`Error::Data`] when it is empty, has no data rows, a row with the wrong number of fields,
    /// a duplicate column name or a value of a numeric column that is not a finite number.
    pub fn load(path: &Path) -> Result<Table> {
        let text = super::text::read_text(path, super::text::Encoding::UTF_8)?;
        Self::parse(&text, path)
    }

    /// Parses CSV text (see [`Table::load`]); `path` is used in messages only.
    pub fn parse(text: &str, path: &Path) -> Result<Table> {
        let bad = |message: String| Error::Data {
            path: path.to_path_buf(),
            message,
        };
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines
            .next()
            .ok_or_else(|| bad("the file is empty".into()))?;
        let names = split_fields(header.trim_start_matches('\u{feff}'))
            .map_err(|m| bad(format!("line 1: {m}")))?;
        for (i, n) in names.iter().enumerate() {
            if n.is_empty() {
                return Err(bad(format!("line 1: column {} has no name", i + 1)));
            }
            if names[..i].contains(n) {
                return Err(bad(format!("line 1: column `{n}` appears twice")));
            }
        }
        let mut numeric: Option<Vec<bool>> = None;
        let mut values = Vec::new();
        let mut text_cols: Vec<Vec<String>> = Vec::new();
        let mut rows = 0;
        for (no, line) in lines {
            let fields = split_fields(line).map_err(|m| bad(format!("line {}: {m}", no + 1)))?;
            if fields.len() != names.len() {
                return Err(bad(format!(
                    "line {}: {} fields, the header names {}",
                    no + 1,
                    fields.len(),
                    names.len()
                )));
            }
            let kinds = numeric.get_or_insert_with(|| {
                fields
                    .iter()
                    .map(|f| f.parse::<f32>().is_ok_and(f32::is_finite))
                    .collect()
            });
            if text_cols.is_empty() {
                text_cols = vec![Vec::new(); kinds.iter().filter(|k| !**k).count()];
            }
            let mut t = 0;
            for ((f, &is_num), name) in fields.iter().zip(kinds.iter()).zip(&names) {
                if is_num {
                    let v: f32 =
                        f.parse()
                            .ok()
                            .filter(|v: &f32| v.is_finite())
                            .ok_or_else(|| {
                                bad(format!(
                                    "line {}: column `{name}` holds `{f}`, not a number",
                                    no + 1
                                ))
                            })?;
                    values.push(v);
                } else {
                    text_cols[t].push(f.clone());
                    t += 1;
                }
            }
            rows += 1;
        }
        let kinds = numeric.ok_or_else(|| bad("no data rows after the header".into()))?;
        let columns = names
            .iter()
            .zip(&kinds)
            .filter(|(_, k)| **k)
            .map(|(n, _)| n.clone())
            .collect();
        let text = names
            .iter()
            .zip(&kinds)
            .filter(|(_, k)| !**k)
            .map(|(n, _)| n.clone())
            .zip(text_cols)
            .collect();
        Ok(Table {
            path: path.to_path_buf(),
            columns,
            values,
            text,
            rows,
        })
    }

    /// Index of numeric column `name`.
    ///
    /// # Errors
    /// [`Error::Data`] naming the available columns (or saying the column is not numeric).
    pub fn column(&self, name: &str) -> Result<usize> {
        if let Some(i) = self.columns.iter().position(|c| c == name) {
            return Ok(i);
        }
        let message = if self.text.iter().any(|(n, _)| n == name) {
            format!("column `{name}` is not numeric")
        } else {
            format!(
                "no column `{name}` (numeric columns: {})",
                self.columns.join(", ")
            )
        };
        Err(Error::Data {
            path: self.path.clone(),
            message,
        })
    }

    /// The text column `name`, if there is one.
    pub fn text_column(&self, name: &str) -> Option<&[String]> {
        self.text
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Value at `row`, numeric column `col`.
    pub fn get(&self, row: usize, col: usize) -> f32 {
        self.values[row * self.columns.len() + col]
    }
}

/// Splits one CSV line into fields (quotes as RFC 4180, unquoted fields trimmed).
fn split_fields(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
        } else {
            match c {
                ',' => {
                    out.push(finish(&mut field, was_quoted));
                    was_quoted = false;
                }
                '"' if field.trim().is_empty() => {
                    field.clear();
                    quoted = true;
                    was_quoted = true;
                }
                _ => field.push(c),
            }
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    out.push(finish(&mut field, was_quoted));
    Ok(out)
}

fn finish(field: &mut String, was_quoted: bool) -> String {
    let f = std::mem::take(field);
    if was_quoted {
        f
    } else {
        f.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Table> {
        Table::parse(text, Path::new("t.csv"))
    }

    #[test]
    fn numeric_and_text_columns() {
        let t = parse("date,a,\"b, c\"\n2020-01-01,1.5,2\n2020-01-02, -3 ,\"4\"\n\n").unwrap();
        assert_eq!(t.columns, ["a", "b, c"]);
        assert_eq!(t.rows, 2);
        assert_eq!(t.values, [1.5, 2.0, -3.0, 4.0]);
        assert_eq!(t.text_column("date").unwrap(), ["2020-01-01", "2020-01-02"]);
        assert_eq!(t.column("b, c").unwrap(), 1);
        assert!(t
            .column("date")
            .unwrap_err()
            .to_string()
            .contains("not numeric"));
        assert!(t
            .column("z")
            .unwrap_err()
            .to_string()
            .contains("no column `z`"));
    }

    #[test]
    fn bad_tables_give_one_message() {
        for (text, needle) in [
            ("", "empty"),
            ("a,b\n", "no data rows"),
            ("a,b\n1,2\n3\n", "line 3: 1 fields"),
            ("a,b\n1,2\n3,x\n", "line 3: column `b` holds `x`"),
            ("a,a\n1,2\n", "appears twice"),
            ("a,b\n1,\"2\n", "not closed"),
            ("a,b\n1,2\n3,NaN\n", "not a number"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
