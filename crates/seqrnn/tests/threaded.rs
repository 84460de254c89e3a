//! The recurrence split into blocks of batch rows, one per thread: every output and gradient
//! still matches the plain-loop reference, for every cell, both directions, stacked layers and
//! blocks of unequal size. (Its own test binary: the thread count is process-wide.)

#[path = "it/common/mod.rs"]
mod common;

use common::assert_close;
use common::engine::{compare_with_reference, engine, problem, CELLS};
use seqrnn::rnn::{Direction, RnnConfig, SeqShape};

#[test]
fn row_blocks_match_the_reference_and_one_thread() {
    for (k, cell) in CELLS.into_iter().enumerate() {
        let config = RnnConfig {
            cell,
            input_size: 6,
            hidden_size: 9,
            num_layers: 2,
            direction: Direction::Bidirectional,
        };
        // 3 threads over 7 rows: blocks of 2, 2 and 3 rows; 3 threads over 2 rows: 2 blocks.
        for (j, shape) in [SeqShape { t: 5, b: 7 }, SeqShape { t: 4, b: 2 }]
            .into_iter()
            .enumerate()
        {
            let seed = 40 + 10 * k as u64 + j as u64;
            seqrnn::linalg::set_threads(3);
            compare_with_reference(config, shape, seed);
            let p = problem(config, shape, seed);
            let split = engine(&p);
            seqrnn::linalg::set_threads(1);
            let whole = engine(&p);
            let label = format!("{config:?} {shape:?}");
            assert_close(&format!("{label} y"), &split.0, &whole.0, 1e-6);
            assert_close(&format!("{label} h_n"), &split.1.h, &whole.1.h, 1e-6);
            assert_close(&format!("{label} grads"), &split.2, &whole.2, 1e-5);
            assert_close(&format!("{label} dx"), &split.3, &whole.3, 1e-5);
            assert_close(&format!("{label} dh0"), &split.4.h, &whole.4.h, 1e-5);
        }
    }
}
