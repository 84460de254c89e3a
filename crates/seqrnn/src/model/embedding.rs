//! Token embedding: a lookup table `W[V, E]`, forward gather and backward scatter-add.

/// Forward: `out[n] = table[ids[n]]` for every token.
///
/// - `table[V, E]`: read. `ids[N]`: read, each `< V` (checked by the caller).
/// - `out[N, E]`: written.
pub fn forward(table: &[f32], ids: &[u32], out: &mut [f32], embed: usize) {
    for (row, &id) in out.chunks_exact_mut(embed).zip(ids) {
        let i = id as usize * embed;
        row.copy_from_slice(&table[i..i + embed]);
    }
}

/// Backward: `dtable[ids[n]] += dout[n]`.
///
/// - `dout[N, E]`: read. `ids[N]`: read.
/// - `dtable[V, E]`: accumulated.
pub fn backward(dout: &[f32], ids: &[u32], dtable: &mut [f32], embed: usize) {
    for (row, &id) in dout.chunks_exact(embed).zip(ids) {
        let i = id as usize * embed;
        dtable[i..i + embed]
            .iter_mut()
            .zip(row)
            .for_each(|(d, g)| *d += g);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gather_and_scatter_add_repeated_ids() {
        let table = [0.0, 1.0, 10.0, 11.0, 20.0, 21.0];
        let ids = [2, 0, 2];
        let mut out = [0.0; 6];
        super::forward(&table, &ids, &mut out, 2);
        assert_eq!(out, [20.0, 21.0, 0.0, 1.0, 20.0, 21.0]);
        let mut d = [0.0; 6];
        super::backward(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &ids, &mut d, 2);
        assert_eq!(d, [3.0, 4.0, 0.0, 0.0, 6.0, 8.0]);
    }
}
