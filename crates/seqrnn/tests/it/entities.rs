//! Entity-level precision, recall and F1 against seqeval 1.2.2's own figures (its default mode,
//! which counts chunks as the CoNLL `conlleval` script) on the fixture files in
//! `tests/fixtures/seqeval/` (made with the `seqeval` package outside the project: one sentence
//! a line, tags separated by spaces; `expected.json` holds its scores). The sentences mix
//! schemes and hold ill-formed sequences on purpose.

use seqrnn::tag::entities::score;
use serde_json::Value;

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seqeval")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn sentences(name: &str) -> Vec<Vec<String>> {
    fixture(name)
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[test]
fn entity_scores_equal_seqeval() {
    let want: Value = serde_json::from_str(&fixture("expected.json")).unwrap();
    let (gold, pred) = (sentences("gold.txt"), sentences("pred.txt"));
    let got = score(&gold, &pred).unwrap();
    let close = |a: f64, b: &Value| (a - b.as_f64().unwrap()).abs() < 1e-12;
    assert!(close(got.overall.precision, &want["precision"]), "{got:?}");
    assert!(close(got.overall.recall, &want["recall"]), "{got:?}");
    assert!(close(got.overall.f1, &want["f1"]), "{got:?}");
    assert!(close(got.accuracy, &want["accuracy"]), "{got:?}");
    let types = want["per_type"].as_object().unwrap();
    assert_eq!(got.per_type.len(), types.len());
    for (kind, w) in types {
        let g = &got.per_type[kind];
        assert!(close(g.precision, &w["precision"]), "{kind}: {g:?} vs {w}");
        assert!(close(g.recall, &w["recall"]), "{kind}: {g:?} vs {w}");
        assert!(close(g.f1, &w["f1"]), "{kind}: {g:?} vs {w}");
        assert_eq!(g.support as u64, w["support"].as_u64().unwrap(), "{kind}");
    }
}

#[test]
fn mismatched_inputs_are_refused() {
    let g = vec![vec!["B-PER".to_string(), "O".into()]];
    let p = vec![vec!["B-PER".to_string()]];
    assert!(score(&g, &p)
        .unwrap_err()
        .to_string()
        .contains("sentence 1"));
    assert!(score(&g, &[] as &[Vec<String>]).is_err());
}
