//! Cutting a token stream into columns and windows: PyTorch `word_language_model`'s `batchify`
//! and `get_batch`.
//!
//! [`Batched::new`] is `batchify`: the stream's `N` tokens are cut into `B` contiguous segments
//! of `R = N / B` tokens (the last `N mod B` tokens are dropped), which become the columns of a
//! row-major `[R, B]` matrix. [`Batched::windows`] and [`Batched::inputs`] / [`Batched::targets`]
//! are the loop `for i in range(0, R - 1, bptt)` over `get_batch(source, i)`: inputs are rows
//! `i..i + len` and targets the same rows shifted down by one, with
//! `len = min(bptt, R - 1 - i)`.

use crate::error::{Error, Result};

/// A token stream cut into B columns: `[N/B, B]` row-major; column j is the contiguous segment
/// `stream[j*R .. (j+1)*R]` with R = N/B (remainder dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batched {
    data: Vec<u32>,
    rows: usize,
    batch: usize,
}

/// A run of rows of a [`Batched`] stream: rows `start..start + len` are the inputs and rows
/// `start + 1..start + 1 + len` the targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The first input row.
    pub start: usize,
    /// The number of time steps (rows).
    pub len: usize,
}

impl Batched {
    /// Cuts `stream` into `batch` columns (PyTorch's `batchify`).
    ///
    /// Fails with [`Error::Config`] if `batch` is 0 or the stream has fewer than `2 · batch`
    /// tokens (each column needs an input and a target).
    pub fn new(stream: &[u32], batch: usize) -> Result<Batched> {
        if batch == 0 {
            return Err(Error::Config(
                "the batch size must be at least 1".to_owned(),
            ));
        }
        let rows = stream.len() / batch;
        if rows < 2 {
            return Err(Error::Config(format!(
                "the split has {} tokens: too few for batch {batch} (needs at least {})",
                stream.len(),
                batch.saturating_mul(2)
            )));
        }
        let mut data = vec![0; rows * batch];
        for (j, column) in stream.chunks_exact(rows).take(batch).enumerate() {
            for (r, &token) in column.iter().enumerate() {
                data[r * batch + j] = token;
            }
        }
        Ok(Batched { data, rows, batch })
    }

    /// Checks a truncated-backpropagation length: [`Error::Config`] if `bptt` is 0.
    pub fn check_bptt(bptt: usize) -> Result<()> {
        if bptt == 0 {
            return Err(Error::Config(
                "the BPTT length must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// The number of rows (time steps), `N / B`.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The number of columns (independent streams), `B`.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The `[rows, batch]` row-major token ids.
    pub fn data(&self) -> &[u32] {
        &self.data
    }

    /// The windows of at most `bptt` rows covering every row that has a target:
    /// `for i in (0..rows-1).step_by(bptt)`, `len = min(bptt, rows-1-i)`.
    ///
    /// Returns no windows for `bptt == 0`; validate it first with [`Batched::check_bptt`].
    pub fn windows(&self, bptt: usize) -> Vec<Window> {
        if bptt == 0 {
            return Vec::new();
        }
        let last = self.rows - 1;
        (0..last)
            .step_by(bptt)
            .map(|start| Window {
                start,
                len: bptt.min(last - start),
            })
            .collect()
    }

    /// Windows of random lengths, as AWD-LSTM draws them: from row 0 on, each window's nominal
    /// length is `bptt` with probability 0.95 and `bptt / 2` otherwise, its length is a draw of
    /// `N(nominal, 5)` truncated to an integer, at least 5 and at most `bptt + 40`, and the last
    /// window is cut at the end of the stream. The same generator state gives the same windows.
    pub fn variable_windows(&self, bptt: usize, rng: &mut impl rand::Rng) -> Vec<Window> {
        use rand::RngExt;
        let last = self.rows - 1;
        let mut out = Vec::new();
        let mut start = 0;
        while bptt > 0 && start < last {
            let nominal = if rng.random::<f64>() < 0.95 {
                bptt as f64
            } else {
                bptt as f64 / 2.0
            };
            // Box–Muller: one standard normal draw.
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            let drawn = (nominal + 5.0 * z).trunc().max(5.0) as usize;
            let len = drawn.min(bptt + 40).min(last - start);
            out.push(Window { start, len });
            start += len;
        }
        out
    }

    /// The `[w.len, batch]` row-major input ids of a window.
    ///
    /// # Panics
    ///
    /// If the window reaches past the last row with a target.
    pub fn inputs(&self, w: Window) -> &[u32] {
        assert!(w.start + w.len < self.rows, "window {w:?} out of range");
        &self.data[w.start * self.batch..(w.start + w.len) * self.batch]
    }

    /// The `[w.len, batch]` row-major target ids of a window: the inputs one row later.
    ///
    /// # Panics
    ///
    /// If the window reaches past the last row.
    pub fn targets(&self, w: Window) -> &[u32] {
        assert!(w.start + w.len < self.rows, "window {w:?} out of range");
        &self.data[(w.start + 1) * self.batch..(w.start + 1 + w.len) * self.batch]
    }

    /// Columns `cols` of every row, as a stream of `cols.len()` columns (a rank's streams in a
    /// data-parallel run).
    ///
    /// # Panics
    ///
    /// If `cols` reaches past the last column or is empty.
    pub fn columns(&self, cols: std::ops::Range<usize>) -> Batched {
        assert!(
            !cols.is_empty() && cols.end <= self.batch,
            "columns {cols:?} out of range"
        );
        let data = self
            .data
            .chunks_exact(self.batch)
            .flat_map(|row| &row[cols.clone()])
            .copied()
            .collect();
        Batched {
            data,
            rows: self.rows,
            batch: cols.len(),
        }
    }

    /// Number of predicted tokens in all windows: `(rows-1)*batch`.
    pub fn predicted_tokens(&self) -> usize {
        (self.rows - 1) * self.batch
    }
}

/// Batches of example indices with similar lengths: indices sorted by length (ties by
/// `order`'s position), cut into batches of at most `batch`.
pub fn length_buckets(lengths: &[usize], order: &[usize], batch: usize) -> Vec<Vec<usize>> {
    let mut idx = order.to_vec();
    idx.sort_by_key(|&i| lengths[i]);
    idx.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}

/// One epoch's training batches: the examples shuffled, cut into batches of similar length
/// ([`length_buckets`]), and the batches shuffled, both with `rng` (in that order, so a seed
/// gives the same epoch on every process).
pub fn shuffled_buckets(
    lengths: &[usize],
    batch: usize,
    rng: &mut crate::dropout::SeqRng,
) -> Vec<Vec<usize>> {
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(rng);
    let mut batches = length_buckets(lengths, &order, batch);
    batches.shuffle(rng);
    batches
}

#[cfg(test)]
mod tests {
    #[test]
    fn length_buckets_sort_by_length_then_order() {
        let b = super::length_buckets(&[3, 1, 2, 1], &[0, 1, 2, 3], 2);
        assert_eq!(b, vec![vec![1, 3], vec![2, 0]]);
    }

    #[test]
    fn variable_windows_cover_the_stream_with_awd_lengths() {
        let b = super::Batched::new(&(0..20_000u32).collect::<Vec<_>>(), 2).unwrap();
        let mut rng = crate::dropout::rng_from_seed(3);
        let w = b.variable_windows(70, &mut rng);
        assert_eq!(w[0].start, 0);
        for pair in w.windows(2) {
            assert_eq!(pair[0].start + pair[0].len, pair[1].start, "contiguous");
        }
        let end = w.last().map(|x| x.start + x.len);
        assert_eq!(
            end,
            Some(b.rows() - 1),
            "every row but the last is an input"
        );
        assert!(w[..w.len() - 1].iter().all(|x| (5..=110).contains(&x.len)));
        let mean = w.iter().map(|x| x.len as f64).sum::<f64>() / w.len() as f64;
        // 0.95 · 70 + 0.05 · 35 = 68.25.
        assert!((mean - 68.25).abs() < 1.5, "{mean}");
        assert!(
            w.iter().any(|x| x.len < 50),
            "half-length windows are drawn"
        );
        let again = b.variable_windows(70, &mut crate::dropout::rng_from_seed(3));
        assert_eq!(w, again);
    }

    use super::*;

    #[test]
    fn a_column_range_keeps_its_streams() {
        let b = Batched::new(&(0..12).collect::<Vec<u32>>(), 3).unwrap();
        let part = b.columns(1..3);
        assert_eq!(part.batch(), 2);
        assert_eq!(part.rows(), 4);
        assert_eq!(part.data(), &[4, 8, 5, 9, 6, 10, 7, 11]);
    }

    #[test]
    fn columns_are_contiguous_segments() {
        let stream: Vec<u32> = (0..26).collect();
        let b = Batched::new(&stream, 4).unwrap();
        assert_eq!((b.rows(), b.batch()), (6, 4));
        for j in 0..4 {
            let column: Vec<u32> = (0..6).map(|r| b.data()[r * 4 + j]).collect();
            let expected: Vec<u32> = (6 * j as u32..6 * j as u32 + 6).collect();
            assert_eq!(column, expected);
        }
        assert_eq!(&b.data()[..8], [0, 6, 12, 18, 1, 7, 13, 19]);
        assert_eq!(b.predicted_tokens(), 20);

        let w = b.windows(4);
        assert_eq!(
            w,
            [Window { start: 0, len: 4 }, Window { start: 4, len: 1 }]
        );
        assert_eq!(
            b.inputs(w[0]),
            [0, 6, 12, 18, 1, 7, 13, 19, 2, 8, 14, 20, 3, 9, 15, 21]
        );
        assert_eq!(
            b.targets(w[0]),
            [1, 7, 13, 19, 2, 8, 14, 20, 3, 9, 15, 21, 4, 10, 16, 22]
        );
        assert_eq!(b.inputs(w[1]), [4, 10, 16, 22]);
        assert_eq!(b.targets(w[1]), [5, 11, 17, 23]);
        let predicted: usize = w.iter().map(|w| b.targets(*w).len()).sum();
        assert_eq!(predicted, b.predicted_tokens());
    }

    /// What PyTorch gives, worked by hand:
    /// `batchify(torch.arange(11), 3)` narrows to 9 tokens, `view(3, -1).t()` is
    /// `[[0,3,6],[1,4,7],[2,5,8]]`; with bptt 1, `range(0, 2, 1)` gives `get_batch` at 0
    /// (data `[[0,3,6]]`, target `[1,4,7]`) and at 1 (data `[[1,4,7]]`, target `[2,5,8]`); with
    /// bptt 35, one batch: data rows 0..2, target `[1,4,7,2,5,8]`.
    #[test]
    fn matches_pytorch_batchify_get_batch() {
        let stream: Vec<u32> = (0..11).collect();
        let b = Batched::new(&stream, 3).unwrap();
        assert_eq!(b.data(), [0, 3, 6, 1, 4, 7, 2, 5, 8]);
        let w = b.windows(1);
        assert_eq!(
            w,
            [Window { start: 0, len: 1 }, Window { start: 1, len: 1 }]
        );
        assert_eq!(
            (b.inputs(w[0]), b.targets(w[0])),
            (&[0, 3, 6][..], &[1, 4, 7][..])
        );
        assert_eq!(
            (b.inputs(w[1]), b.targets(w[1])),
            (&[1, 4, 7][..], &[2, 5, 8][..])
        );
        let w = b.windows(35);
        assert_eq!(w, [Window { start: 0, len: 2 }]);
        assert_eq!(b.inputs(w[0]), [0, 3, 6, 1, 4, 7]);
        assert_eq!(b.targets(w[0]), [1, 4, 7, 2, 5, 8]);
    }

    #[test]
    fn too_short_and_bad_parameters() {
        let err = Batched::new(&[1, 2, 3, 4, 5, 6, 7], 4).unwrap_err();
        assert!(matches!(err, Error::Config(_)));
        let msg = err.to_string();
        assert!(
            msg.contains("7 tokens") && msg.contains("batch 4") && msg.contains("at least 8"),
            "{msg}"
        );
        assert!(Batched::new(&[], 1).is_err());
        assert!(Batched::new(&[1, 2], 0).is_err());
        let b = Batched::new(&[1, 2, 3, 4, 5, 6, 7, 8], 4).unwrap();
        assert_eq!(b.rows(), 2);
        assert_eq!(b.windows(1), [Window { start: 0, len: 1 }]);
        assert_eq!(b.windows(0), []);
        assert!(Batched::check_bptt(0).is_err());
        assert!(Batched::check_bptt(1).is_ok());
    }

    #[test]
    fn batch_of_one_is_the_stream() {
        let stream = [5, 1, 4];
        let b = Batched::new(&stream, 1).unwrap();
        assert_eq!(b.data(), stream);
        assert_eq!(b.windows(2), [Window { start: 0, len: 2 }]);
        assert_eq!(b.targets(Window { start: 0, len: 2 }), [1, 4]);
    }
}
