//! Inference answers do not depend on the batch: a text, sentence or recording gets, to the
//! bit, the answer it gets alone, whatever else is predicted with it (what the server's
//! micro-batches rely on).

use std::path::PathBuf;

use seqrnn::tasks::tiny;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("seqrnn-batched-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn classifier_probabilities_are_the_same_alone_and_in_any_batch() {
    let run = tiny::classify(&scratch("classify")).unwrap();
    let m = seqrnn::classify::Trained::load(&run).unwrap();
    let texts = [
        "a gripping film",
        "dull and far too long",
        "far too gripping and dull and a film that is long , long , long",
        "film",
        "a",
        "dull dull dull dull dull dull dull dull dull dull dull dull",
    ];
    let together = m.predict(&texts).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let alone = m.predict(&[text]).unwrap();
        assert_eq!(alone[0], together[i], "{text}");
        let pair = m.predict(&[texts[(i + 1) % texts.len()], text]).unwrap();
        assert_eq!(pair[1], together[i], "{text} second of two");
    }
}

#[test]
fn tags_and_transcripts_are_the_same_alone_and_in_any_batch() {
    let d = scratch("tag-speech");
    let tagger = seqrnn::tag::Trained::load(tiny::tag(&d).unwrap()).unwrap();
    let sentences = [
        "John lives in Paris",
        "Paris",
        "the company said John and Mary met in London on Monday",
        "a b c",
    ];
    let together = tagger.tag(&sentences).unwrap();
    for (i, s) in sentences.iter().enumerate() {
        assert_eq!(tagger.tag(&[s]).unwrap()[0], together[i], "{s}");
    }
    let speech = seqrnn::speech::Trained::load(tiny::speech(&d).unwrap()).unwrap();
    let recordings = [
        tiny::tones(&["lo", "hi"], 1),
        tiny::tones(&["hi"], 2),
        tiny::tones(&["lo", "lo", "hi", "lo"], 3),
    ];
    let refs: Vec<&[f32]> = recordings.iter().map(Vec::as_slice).collect();
    let together = speech.transcribe(&refs).unwrap();
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(speech.transcribe(&[r]).unwrap()[0], together[i]);
    }
}

#[test]
fn forecasts_are_the_same_alone_and_in_any_batch() {
    let fc =
        seqrnn::forecast::Trained::load(tiny::forecast(&scratch("forecast")).unwrap()).unwrap();
    let table = tiny::load_table().unwrap();
    let lookback = fc.model.config().lookback;
    let tables: Vec<seqrnn::data::table::Table> = [0usize, 2, 5, 9]
        .iter()
        .map(|cut| {
            let n = (table.rows - cut).max(lookback);
            let mut csv = String::from("load\n");
            for v in &table.values[..n] {
                csv += &format!("{v}\n");
            }
            seqrnn::data::table::Table::parse(&csv, std::path::Path::new("t")).unwrap()
        })
        .collect();
    let together = fc.predict_many(&tables).unwrap();
    assert_eq!(together.len(), tables.len());
    for (t, f) in tables.iter().zip(&together) {
        assert_eq!(&fc.predict(t).unwrap(), f, "{} rows", t.rows);
    }
    // A table shorter than the lookback is refused, alone or among others.
    let short = seqrnn::data::table::Table::parse("load\n1\n", std::path::Path::new("t")).unwrap();
    assert!(fc.predict_many(&[tables[0].clone(), short]).is_err());
}
