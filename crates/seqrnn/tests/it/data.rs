//! The data pipeline on the real corpora in `shared/data` (skipped when they are absent).

use std::time::Instant;

use seqrnn::data::{load_char_corpus, load_word_corpus, Batched, Vocab, EOS, UNK};

use crate::common;

const PTB: &str = "data/ptb";
const SHAKESPEARE: &str = "data/tinyshakespeare/input.txt";

#[test]
fn data_ptb_word_corpus() {
    let Some(ptb) = common::shared(PTB) else {
        return;
    };
    let start = Instant::now();
    let c = load_word_corpus(&ptb, Default::default()).unwrap();
    eprintln!("PTB loaded in {:?}", start.elapsed());

    assert_eq!(c.vocab.len(), 10_000);
    assert_eq!(c.train.len(), 929_589);
    assert_eq!(c.valid.len(), 73_760);
    assert_eq!(c.test.as_ref().map(Vec::len), Some(82_430));
    assert_eq!((c.unknown_in_valid, c.unknown_in_test), (0, 0));
    // <eos> first appears after the 24 words of line 1, <unk> is the second word of line 2.
    assert_eq!(c.vocab.id(EOS), Some(24));
    assert_eq!(c.vocab.unk_id(), Some(26));
    assert_eq!(c.vocab.id(UNK), Some(26));

    let text = std::fs::read_to_string(ptb.join("ptb.train.txt")).unwrap();
    let first_line: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(first_line[..3], ["aer", "banknote", "berlitz"]);
    let decoded: Vec<&str> = c.train[..=first_line.len()]
        .iter()
        .map(|&id| c.vocab.token(id).unwrap())
        .collect();
    assert_eq!(decoded[..first_line.len()], first_line[..]);
    assert_eq!(decoded[first_line.len()], EOS);
    // All the words of line 1 are distinct, so they get ids 0..24 in order.
    assert_eq!(c.train[..24], (0..24).collect::<Vec<u32>>()[..]);

    // PyTorch's defaults: batch 20, bptt 35.
    let b = Batched::new(&c.train, 20).unwrap();
    assert_eq!(b.rows(), 929_589 / 20);
    assert_eq!(b.windows(35).len(), (b.rows() - 1).div_ceil(35));
    assert_eq!(b.predicted_tokens(), (929_589 / 20 - 1) * 20);

    // The vocabulary file round-trips.
    let path = std::env::temp_dir().join(format!("seqrnn-ptb-vocab-{}.txt", std::process::id()));
    c.vocab.save(&path).unwrap();
    let back = Vocab::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(back, c.vocab);
}

#[test]
fn data_tiny_shakespeare_char_corpus() {
    let Some(shakespeare) = common::shared(SHAKESPEARE) else {
        return;
    };
    let c = load_char_corpus(&shakespeare, Default::default()).unwrap();
    assert_eq!(c.train.len() + c.valid.len(), 1_115_394);
    assert_eq!(c.train.len(), 1_003_854);
    assert_eq!(c.valid.len(), 111_540);
    assert_eq!(c.vocab.len(), 66);
    assert_eq!(c.vocab.unk_id(), Some(65));
    assert_eq!(c.unknown_in_valid, 0);
    assert!(c.test.is_none());
    let start: String = c.train[..14]
        .iter()
        .map(|&id| c.vocab.token(id).unwrap())
        .collect();
    assert_eq!(start, "First Citizen:");
    assert_eq!(c.vocab.tokens()[..4], ["F", "i", "r", "s"]);
    assert!(c.vocab.id("\n").is_some());

    let path = std::env::temp_dir().join(format!(
        "seqrnn-shakespeare-vocab-{}.txt",
        std::process::id()
    ));
    c.vocab.save(&path).unwrap();
    let back = Vocab::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(back, c.vocab);
}

/// CoNLL-2003 English NER (IOB1) and UD English EWT (CoNLL-U, UPOS) as the tagger reads them.
#[test]
fn data_conll2003_and_ud_ewt_tagging_files() {
    use seqrnn::tag::conll::{read_tagged, Format, ReadConfig};
    use seqrnn::tag::tags::{check, detect, Scheme};
    let Some(conll) = common::shared("data/conll2003") else {
        return;
    };
    let mut sizes = Vec::new();
    for split in ["eng.train", "eng.testa", "eng.testb"] {
        let f = read_tagged(&conll.join(split), &ReadConfig::default()).unwrap();
        let labels: Vec<Vec<String>> = f.sentences.iter().map(|s| s.labels.clone()).collect();
        assert_eq!(detect(&labels), Scheme::Iob1, "{split}");
        assert!(
            labels.iter().all(|l| check(l, Scheme::Iob1).is_ok()),
            "{split}"
        );
        sizes.push((
            f.sentences.len(),
            f.sentences.iter().map(|s| s.words.len()).sum::<usize>(),
        ));
    }
    // The shared task's sentence and token counts (Tjong Kim Sang & De Meulder 2003, table 1).
    assert_eq!(
        sizes,
        vec![(14_041, 203_621), (3_250, 51_362), (3_453, 46_435)]
    );
    let Some(ud) = common::shared("data/ud-ewt") else {
        return;
    };
    let cfg = ReadConfig {
        format: Format::Conllu,
        ..ReadConfig::default()
    };
    let train = read_tagged(&ud.join("en_ewt-ud-train.conllu"), &cfg).unwrap();
    assert_eq!(train.sentences.len(), 12_544);
    let tags: std::collections::BTreeSet<&str> = train
        .sentences
        .iter()
        .flat_map(|s| s.labels.iter().map(String::as_str))
        .collect();
    assert_eq!(tags.len(), 17, "{tags:?}");
}

#[test]
fn data_fsdd_recordings_and_splits() {
    use seqrnn::speech::data::{concatenate, load_fsdd, load_fsdd_part, Concat, FsddSplit, DIGITS};
    let Some(dir) = common::shared("data/fsdd/recordings") else {
        return;
    };
    let start = Instant::now();
    let parts = [FsddSplit::Train, FsddSplit::Valid, FsddSplit::Test]
        .map(|split| load_fsdd(&dir, split, 8000).unwrap());
    eprintln!("FSDD read in {:?}", start.elapsed());
    // 6 speakers × 10 digits: takes 10–49, 5–9 and 0–4.
    assert_eq!(parts.each_ref().map(Vec::len), [2400, 300, 300]);
    for part in &parts {
        for d in DIGITS {
            assert_eq!(
                part.iter().filter(|u| u.transcript == d).count(),
                part.len() / 10
            );
        }
        assert!(part
            .iter()
            .all(|u| !u.samples.is_empty() && u.samples.iter().all(|v| v.abs() <= 1.0)));
    }
    let test = &parts[2];
    assert_eq!(test[0].source, "0_george_0.wav");
    let seconds: f64 = test.iter().map(|u| u.samples.len() as f64).sum::<f64>() / 8000.0;
    assert!(
        (120.0..140.0).contains(&seconds),
        "{seconds} s of test audio"
    );
    // Connected utterances: one per recording, of 2 to 7 digits.
    let c = concatenate(test, &Concat::parse("2-7").unwrap(), 8000, 3).unwrap();
    assert_eq!(c.len(), 300);
    let words: usize = c.iter().map(|u| u.transcript.split(' ').count()).sum();
    assert!((1200..1500).contains(&words), "{words} words");
    // One speaker held out: theirs all test, the other five speakers' takes 0–4 validate.
    let held = [FsddSplit::Train, FsddSplit::Valid, FsddSplit::Test]
        .map(|split| load_fsdd_part(&dir, split, Some("theo"), 8000).unwrap());
    assert_eq!(held.each_ref().map(Vec::len), [2250, 250, 500]);
    assert!(held[2].iter().all(|u| u.speaker == "theo"));
    assert!(held[..2].iter().flatten().all(|u| u.speaker != "theo"));
    let err = load_fsdd_part(&dir, FsddSplit::Test, Some("nobody"), 8000).unwrap_err();
    let err = err.to_string();
    assert!(
        err.contains("\"nobody\"") && err.contains("george, jackson"),
        "{err}"
    );
}
