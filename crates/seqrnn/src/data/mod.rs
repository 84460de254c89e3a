//! Corpora, vocabularies and batching.
