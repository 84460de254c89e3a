//! BLEU and chrF against sacreBLEU 2.6.0's own figures on the fixture files in
//! `tests/fixtures/bleu/` (made with the `sacrebleu` package outside the project: `expected.json`
//! holds its scores, statistics and 13a tokenisations).

use seqrnn::report::bleu::{corpus_bleu, corpus_chrf, tokenize_13a, Case};
use serde_json::Value;

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bleu")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn lines(name: &str) -> Vec<String> {
    let text = fixture(name);
    let mut v: Vec<String> = text.split('\n').map(String::from).collect();
    assert_eq!(v.pop().as_deref(), Some(""), "{name} ends with a newline");
    v
}

fn expected() -> Value {
    serde_json::from_str(&fixture("expected.json")).unwrap()
}

#[test]
fn the_13a_tokeniser_splits_as_sacrebleu() {
    let want = expected();
    let want = want["tokenized_13a"].as_array().unwrap();
    let hyps = lines("hyp.txt");
    assert_eq!(hyps.len(), want.len());
    for (h, w) in hyps.iter().zip(want) {
        assert_eq!(tokenize_13a(h), w.as_str().unwrap(), "{h}");
    }
}

#[test]
fn corpus_bleu_equals_sacrebleu_with_one_and_two_references_cased_and_lowercased() {
    let want = expected();
    let hyps = lines("hyp.txt");
    let (r1, r2) = (lines("ref.txt"), lines("ref2.txt"));
    for (key, refs, case) in [
        ("bleu_one_ref", vec![r1.clone()], Case::Mixed),
        ("bleu_one_ref_lowercase", vec![r1.clone()], Case::Lower),
        ("bleu_two_refs", vec![r1.clone(), r2.clone()], Case::Mixed),
        (
            "bleu_two_refs_lowercase",
            vec![r1.clone(), r2.clone()],
            Case::Lower,
        ),
    ] {
        let w = &want[key];
        let b = corpus_bleu(&hyps, &refs, case).unwrap();
        let ints = |v: &Value| -> Vec<u64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect()
        };
        assert_eq!(b.counts.to_vec(), ints(&w["counts"]), "{key}");
        assert_eq!(b.totals.to_vec(), ints(&w["totals"]), "{key}");
        assert_eq!(b.sys_len, w["sys_len"].as_u64().unwrap(), "{key}");
        assert_eq!(b.ref_len, w["ref_len"].as_u64().unwrap(), "{key}");
        let s = w["score"].as_f64().unwrap();
        assert!((b.score - s).abs() < 1e-9, "{key}: {} vs {s}", b.score);
    }
}

#[test]
fn corpus_chrf_equals_sacrebleu() {
    let want = expected();
    let hyps = lines("hyp.txt");
    let (r1, r2) = (lines("ref.txt"), lines("ref2.txt"));
    for (key, refs) in [
        ("chrf_one_ref", vec![r1.clone()]),
        ("chrf_two_refs", vec![r1, r2]),
    ] {
        let s = want[key]["score"].as_f64().unwrap();
        let c = corpus_chrf(&hyps, &refs).unwrap();
        assert!((c - s).abs() < 1e-9, "{key}: {c} vs {s}");
    }
}

#[test]
fn smoothing_and_empty_output_match_sacrebleu() {
    let want = expected();
    let one = |s: &str| vec![s.to_string()];
    let b = corpus_bleu(
        &one("the cat sat on a mat"),
        &[one("the cat is on the mat")],
        Case::Mixed,
    )
    .unwrap();
    let s = want["bleu_no_matching_4grams"]["score"].as_f64().unwrap();
    assert!((b.score - s).abs() < 1e-9, "{} vs {s}", b.score);
    let empty = vec![String::new(), String::new()];
    let refs = vec![vec!["a b c".to_string(), "d e".to_string()]];
    assert_eq!(corpus_bleu(&empty, &refs, Case::Mixed).unwrap().score, 0.0);
    assert_eq!(want["bleu_empty_hypotheses"]["score"].as_f64(), Some(0.0));
}

#[test]
fn references_that_do_not_line_up_are_refused() {
    let hyps = vec!["a".to_string(), "b".to_string()];
    let e = corpus_bleu(&hyps, &[vec!["a".to_string()]], Case::Mixed).unwrap_err();
    assert!(
        e.to_string()
            .contains("reference set 1 has 1 lines but there are 2 hypotheses"),
        "{e}"
    );
    assert!(corpus_chrf(&hyps, &[]).is_err());
}
