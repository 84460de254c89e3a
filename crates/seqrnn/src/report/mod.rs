//! Training records: per-epoch metrics files and learning-curve plots.
