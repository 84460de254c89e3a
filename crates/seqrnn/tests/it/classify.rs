//! Classification data on SST-2 from `shared/data` (skipped when absent) and the padding
//! guarantee through the public API: a sentence alone and in a batch with longer ones gets the
//! same logits, for every pooling, one or two directions, LSTM and GRU.

use seqrnn::classify::data::{build_labels, build_vocab, encode_all, load_tsv};
use seqrnn::classify::model::{
    Classifier, ClassifierConfig, ClassifierWorkspace, Directions, Pooling, TokenBatch,
};
use seqrnn::rnn::{CellKind, GruVariant};

use crate::common;

#[test]
fn sst2_splits_and_vocabulary() {
    let Some(dir) = common::shared("data/sst2") else {
        return;
    };
    let dir = dir.as_path();
    let train = load_tsv(&dir.join("train.tsv"), Default::default()).unwrap();
    let dev = load_tsv(&dir.join("dev.tsv"), Default::default()).unwrap();
    let test = load_tsv(&dir.join("test.tsv"), Default::default()).unwrap();
    assert_eq!((train.len(), dev.len(), test.len()), (67_349, 872, 1_821));
    let labels = build_labels(&train);
    assert_eq!(labels.tokens(), ["0", "1"]);
    let vocab = build_vocab(&train, 1);
    assert_eq!(&vocab.tokens()[..2], ["<pad>", "<unk>"]);
    let d = encode_all(&dev, &vocab, &labels, &dir.join("dev.tsv")).unwrap();
    assert_eq!(d.ids.len(), 872);
    assert!(
        d.unknown_tokens > 0 && d.unknown_tokens < 2000,
        "{}",
        d.unknown_tokens
    );
}

#[test]
fn padding_never_changes_a_result() {
    let sentence: &[u32] = &[5, 9, 2, 7];
    let longer: [&[u32]; 2] = [&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], &[3, 3, 3, 3, 3, 3]];
    for cell in [CellKind::Lstm, CellKind::Gru(GruVariant::ResetAfter)] {
        for direction in [Directions::Forward, Directions::Bidirectional] {
            for pooling in [Pooling::Last, Pooling::Mean, Pooling::Max] {
                let cfg = ClassifierConfig {
                    vocab: 12,
                    embed: 6,
                    cell,
                    hidden: 5,
                    layers: 2,
                    direction,
                    pooling,
                    dropout: 0.0,
                    classes: 3,
                    channels: 0,
                };
                let m = Classifier::new(cfg).unwrap();
                let p = m.init_params(11).unwrap();
                let mut ws = ClassifierWorkspace::default();
                let mut one = TokenBatch::default();
                one.fill([sentence].into_iter());
                let mut alone = vec![0.0; 3];
                m.logits(&p, &one, &mut alone, &mut ws).unwrap();
                let mut many = TokenBatch::default();
                many.fill([longer[0], sentence, longer[1]].into_iter());
                let mut batched = vec![0.0; 9];
                m.logits(&p, &many, &mut batched, &mut ws).unwrap();
                for (a, b) in alone.iter().zip(&batched[3..6]) {
                    assert!(
                        (a - b).abs() <= 1e-6 * (1.0 + a.abs()),
                        "{cfg:?}: {alone:?} vs {:?}",
                        &batched[3..6]
                    );
                }
            }
        }
    }
}
