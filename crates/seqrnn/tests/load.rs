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
