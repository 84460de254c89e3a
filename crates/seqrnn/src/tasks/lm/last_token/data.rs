//! Sliding windows over a token stream for last-token language modelling (the Keras
//! tutorials' formulation): example `i` is the window `stream[i..i + N]` and the word after
//! it, `stream[i + N]`; every position of the stream starts one (stride 1).
//!
//! Batches are time-major `ids[N, B]` (window `j` in column `j`) with `targets[B]`, the layout
//! of [`crate::tasks::lm::last_token::model::LastTokenModel`].

use crate::error::{Error, Result};

/// The windows of length `N` over a stream: `len − N` examples.
#[derive(Clone, Copy, Debug)]
pub struct Windows<'a> {
    stream: &'a [u32],
    window: usize,
}

impl<'a> Windows<'a> {
    /// The windows of `window` tokens over `stream`; `what` names the stream in errors ("the
    /// training split").
    ///
    /// # Errors
    /// [`Error::Config`] when `window` is 0 or the stream holds no window and a token after it
    /// (fewer than `window + 1` tokens).
    pub fn new(stream: &'a [u32], window: usize, what: &str) -> Result<Self> {
        check_window(window)?;
        if stream.len() <= window {
            return Err(Error::Config(format!(
                "a window of {window} tokens needs more than {window} tokens in {what}, which has {}",
                stream.len()
            )));
        }
        Ok(Windows { stream, window })
    }

    /// The whole stream.
    pub fn stream(&self) -> &'a [u32] {
        self.stream
    }

    /// Window length `N`.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Number of examples, `len − N`.
    pub fn len(&self) -> usize {
        self.stream.len() - self.window
    }

    /// Always `false` (a [`Windows`] holds at least one example).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Fills `ids[N, B]` and `targets[B]` (resized) with the examples `starts[B]` (each
    /// `< len()`).
    pub fn fill(&self, starts: &[usize], ids: &mut Vec<u32>, targets: &mut Vec<u32>) {
        fill_windows(self.stream, self.window, starts, ids, targets);
    }
}

/// Refuses a window of 0 tokens.
///
/// # Errors
/// [`Error::Config`] when `window` is 0.
pub fn check_window(window: usize) -> Result<()> {
    if window == 0 {
        return Err(Error::Config(
            "the window must hold at least 1 token, got 0".into(),
        ));
    }
    Ok(())
}

/// Fills `ids[T, B]` with `stream[s..s + T]` for each `s` of `starts` and `targets[B]` with
/// `stream[s + T]`.
pub fn fill_windows(
    stream: &[u32],
    t: usize,
    starts: &[usize],
    ids: &mut Vec<u32>,
    targets: &mut Vec<u32>,
) {
    let b = starts.len();
    ids.clear();
    ids.resize(t * b, 0);
    targets.clear();
    for (j, &s) in starts.iter().enumerate() {
        for (k, &id) in stream[s..s + t].iter().enumerate() {
            ids[k * b + j] = id;
        }
        targets.push(stream[s + t]);
    }
}

/// How an evaluation stream is predicted: each token after the first once, from its `N`
/// preceding tokens, the first `N − 1` predicted tokens from the (fewer) tokens before them.
/// Yields `(t, starts)` groups over a stream of `len` tokens: windows of length `t` starting
/// at each `s` of `starts` (predicting `stream[s + t]`), at most `batch` a group; the short
/// windows first, one per group.
pub fn eval_groups(
    len: usize,
    window: usize,
    batch: usize,
) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> {
    let batch = batch.max(1);
    let short = (1..window.min(len)).map(|t| (t, 0..1));
    let full = (0..len.saturating_sub(window))
        .step_by(batch)
        .map(move |s| (window, s..(s + batch).min(len - window)));
    short.chain(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_targets_time_major() {
        let stream = [10, 11, 12, 13, 14];
        let w = Windows::new(&stream, 3, "the stream").unwrap();
        assert_eq!(w.len(), 2);
        let (mut ids, mut targets) = (Vec::new(), Vec::new());
        w.fill(&[1, 0], &mut ids, &mut targets);
        assert_eq!(ids, [11, 10, 12, 11, 13, 12]);
        assert_eq!(targets, [14, 13]);
    }

    #[test]
    fn refuses_empty_windows_and_short_streams() {
        let e = Windows::new(&[1, 2, 3], 0, "x").unwrap_err().to_string();
        assert!(e.contains("at least 1 token"), "{e}");
        let e = Windows::new(&[1, 2, 3], 3, "the training split")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("more than 3 tokens in the training split, which has 3"),
            "{e}"
        );
        assert!(Windows::new(&[1, 2, 3], 2, "x").is_ok());
    }

    /// Every token but the first is predicted exactly once, from at most `N` tokens before it.
    #[test]
    fn evaluation_predicts_each_token_once() {
        for (len, window, batch) in [(10, 3, 4), (10, 1, 3), (4, 6, 2), (7, 6, 5), (2, 1, 1)] {
            let mut predicted = vec![0; len];
            for (t, starts) in eval_groups(len, window, batch) {
                assert!(t <= window && !starts.is_empty() && starts.len() <= batch);
                for s in starts {
                    assert!(t == window || s == 0);
                    predicted[s + t] += 1;
                }
            }
            let want: Vec<usize> = (0..len).map(|i| usize::from(i > 0)).collect();
            assert_eq!(predicted, want, "len {len}, window {window}, batch {batch}");
        }
    }
}
