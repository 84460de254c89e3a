//! `seqrnn::load` opens a finished run of every task, and refuses folders that are not runs;
//! the tagger's library use agrees with itself (words or strings, files).

use std::path::{Path, PathBuf};

use seqrnn::tasks::tiny;
use seqrnn::Error;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("seqrnn-load-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn edit_config(run: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = run.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn every_task_loads_under_its_name() {
    let d = scratch("all");
    for (task, run) in tiny::all(&d).unwrap() {
        assert_eq!(seqrnn::tasks::task_of(&run).unwrap(), task);
        let m = seqrnn::load(&run).unwrap();
        assert_eq!(m.task(), task);
        assert!(m.num_params() > 0);
        let kinds = [
            m.as_lm().is_some(),
            m.as_last_token().is_some(),
            m.as_forecast().is_some(),
            m.as_classify().is_some(),
            m.as_translate().is_some(),
            m.as_tag().is_some(),
            m.as_speech().is_some(),
        ];
        assert_eq!(kinds.iter().filter(|k| **k).count(), 1, "{task}");
        let at = seqrnn::tasks::TASKS
            .iter()
            .position(|t| *t == task)
            .unwrap();
        assert!(kinds[at], "{task}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_language_model_run_without_a_task_still_loads() {
    let d = scratch("legacy");
    let run = tiny::lm(&d).unwrap();
    edit_config(&run, |v| {
        v.as_object_mut().unwrap().remove("task");
    });
    assert_eq!(seqrnn::load(&run).unwrap().task(), "lm");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn what_is_not_a_run_is_refused() {
    let d = scratch("refused");
    // A folder without config.json, and a missing folder.
    let e = seqrnn::load(&d).unwrap_err();
    assert!(matches!(&e, Error::Data { .. }), "{e}");
    assert!(e.to_string().contains("not a seqrnn run"), "{e}");
    assert!(matches!(
        seqrnn::load(d.join("missing")),
        Err(Error::Data { .. })
    ));
    // An unknown task, a configuration that names none, and one that is not JSON.
    let run = tiny::classify(&d).unwrap();
    edit_config(&run, |v| v["task"] = "juggle".into());
    let e = seqrnn::load(&run).unwrap_err();
    assert!(matches!(&e, Error::Format { .. }), "{e}");
    assert!(e.to_string().contains("unknown task `juggle`"), "{e}");
    edit_config(&run, |v| {
        v.as_object_mut().unwrap().remove("task");
    });
    assert!(matches!(seqrnn::load(&run), Err(Error::Format { .. })));
    std::fs::write(run.join("config.json"), "{").unwrap();
    assert!(matches!(seqrnn::load(&run), Err(Error::Format { .. })));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_tagger_tags_words_strings_and_files() {
    let d = scratch("tag");
    let m = seqrnn::tag::Trained::load(tiny::tag(&d).unwrap()).unwrap();
    assert!(m.entities());
    let from_text = m
        .tag(&["John lives in Paris", "", "Mary  saw\tJohn"])
        .unwrap();
    let from_words = m
        .tag(&[
            vec!["John", "lives", "in", "Paris"],
            vec![],
            vec!["Mary", "saw", "John"],
        ])
        .unwrap();
    assert_eq!(from_text, from_words);
    assert_eq!(
        m.predict(&["John lives in Paris"]).unwrap()[0],
        from_text[0]
    );
    assert_eq!(
        from_text.iter().map(Vec::len).collect::<Vec<_>>(),
        [4, 0, 3]
    );
    // Labels come back in the files' scheme (IOB2), not the training one (IOBES).
    for l in from_text.iter().flatten() {
        assert!(
            l == "O" || l.starts_with("B-") || l.starts_with("I-"),
            "{l}"
        );
    }
    // A file: every token line gets one more column, the tags of its sentences.
    let file = tiny::tag_file(&d);
    let tagged = m.tag_file(&file).unwrap();
    let input = std::fs::read_to_string(&file).unwrap();
    assert_eq!(tagged.lines().count(), input.lines().count());
    for (t, i) in tagged.lines().zip(input.lines()) {
        match i.is_empty() {
            true => assert!(t.is_empty()),
            false => assert_eq!(t.split(' ').count(), 3, "{t}"),
        }
    }
    let first: Vec<&str> = tagged
        .lines()
        .take(4)
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(first, from_text[0]);
    let (scores, confusion) = m.evaluate_file(&file).unwrap();
    assert!((0.0..=1.0).contains(&scores.accuracy));
    assert_eq!(confusion.len(), m.labels().len());
    let tokens: usize = confusion.iter().flatten().sum();
    assert_eq!(tokens, scores.tokens);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_other_verbs_answer() {
    let d = scratch("verbs");
    let t = seqrnn::translate::Trained::load(tiny::translate(&d).unwrap()).unwrap();
    assert_eq!(
        t.predict(&["ein hund", "eine katze"]).unwrap(),
        t.translate(&["ein hund", "eine katze"], None).unwrap()
    );
    let s = seqrnn::speech::Trained::load(tiny::speech(&d).unwrap()).unwrap();
    let (a, b) = (tiny::tones(&["lo"], 3), tiny::tones(&["hi", "lo"], 4));
    let text = s.transcribe(&[&a, &b]).unwrap();
    assert_eq!(text.len(), 2);
    assert_eq!(s.predict(&[&a, &b]).unwrap(), text);
    assert!(matches!(s.transcribe(&[&[]]), Err(Error::Data { .. })));
    std::fs::remove_dir_all(&d).unwrap();
}

/// The largest absolute difference of two equally long lists.
fn worst(a: impl IntoIterator<Item = f64>, b: impl IntoIterator<Item = f64>) -> f64 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn every_task_quantizes_to_int8_with_answers_close_to_the_f32_ones() {
    let d = scratch("int8");
    for (task, run) in tiny::all(&d).unwrap() {
        let out = d.join(format!("{task}-int8"));
        let r = seqrnn::quantize(&run, &out).unwrap();
        assert_eq!(r.task, task);
        assert!(!r.tensors.is_empty(), "{task}");
        assert!(r.int8_bytes < r.f32_bytes, "{task}: {r:?}");
        let config = std::fs::read_to_string(out.join("config.json")).unwrap();
        assert!(config.contains("\"quantized\": \"int8\""), "{task}");
        let (f, q) = (seqrnn::load(&run).unwrap(), seqrnn::load(&out).unwrap());
        assert!(!f.is_int8() && q.is_int8(), "{task}");
        assert_eq!(f.num_params(), q.num_params());
        match task {
            "lm" => {
                let (f, q) = (f.as_lm().unwrap(), q.as_lm().unwrap());
                let ids = f.encode("the company said the market").unwrap().ids;
                let (a, b) = (
                    f.perplexity(&ids, 1).unwrap(),
                    q.perplexity(&ids, 1).unwrap(),
                );
                assert!((a.loss - b.loss).abs() < 0.02 * a.loss, "{a:?} {b:?}");
            }
            "classify" => {
                let texts = ["a gripping film", "dull and slow"];
                let a = f.as_classify().unwrap().predict(&texts).unwrap();
                let b = q.as_classify().unwrap().predict(&texts).unwrap();
                for (a, b) in a.iter().zip(&b) {
                    let (pa, pb) = (&a.probabilities, &b.probabilities);
                    let w = worst(pa.iter().map(|&v| v as f64), pb.iter().map(|&v| v as f64));
                    assert!(w < 0.02, "{a:?} {b:?}");
                }
            }
            "forecast" => {
                let table = tiny::load_table().unwrap();
                let a = f.as_forecast().unwrap().predict(&table).unwrap().values;
                let b = q.as_forecast().unwrap().predict(&table).unwrap().values;
                let scale = a.iter().flatten().fold(1.0f64, |m, v| m.max(v.abs()));
                let w = worst(a.into_iter().flatten(), b.into_iter().flatten());
                assert!(w < 0.05 * scale, "{w} of {scale}");
            }
            // Tiny models barely separate their choices, so a quantized one may choose
            // others: they answer in the same shape.
            "tag" => {
                let s = ["John lives in Paris"];
                let a = f.as_tag().unwrap().tag(&s).unwrap();
                assert_eq!(q.as_tag().unwrap().tag(&s).unwrap()[0].len(), a[0].len());
            }
            "translate" => {
                let out = q.as_translate().unwrap().translate(&["ein hund"], None);
                assert_eq!(out.unwrap().len(), 1);
            }
            "speech" => {
                let tone = tiny::tones(&["lo", "hi"], 1);
                assert_eq!(
                    q.as_speech().unwrap().transcribe(&[&tone]).unwrap().len(),
                    1
                );
            }
            _ => {
                let (f, q) = (f.as_last_token().unwrap(), q.as_last_token().unwrap());
                let ids = f.encode("the company said the market").unwrap().ids;
                let (a, b) = (f.perplexity(&ids).unwrap(), q.perplexity(&ids).unwrap());
                assert!((a.loss - b.loss).abs() < 0.02 * a.loss, "{a:?} {b:?}");
            }
        }
        // Not again, not over a run, not for training.
        let again = seqrnn::quantize(&out, d.join("twice")).unwrap_err();
        assert!(again.to_string().contains("quantized already"), "{again}");
        let over = seqrnn::quantize(&run, &run).unwrap_err();
        assert!(matches!(over, Error::RunExists { .. }), "{over}");
        let resume = seqrnn::run::Run::resume(&out).unwrap_err();
        assert!(matches!(resume, Error::Quantized { .. }), "{resume}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}
