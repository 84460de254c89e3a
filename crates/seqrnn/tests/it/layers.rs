//! The library's layers: imports run one way, from the tasks down to the shared parts, and from
//! a shared part only to parts below it (docs/architecture.md draws the same order).
//!
//! Every `crate::…` path in the library's sources (comments aside) is checked against the order
//! below; a task may use the shared parts and itself only (the last-token language model also
//! uses the language model it is a form of).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The shared parts, lowest first: a part may use the parts of lower levels only (and its own).
const LEVELS: &[&[&str]] = &[
    // `test_shared`: the unit tests' access to `../shared` (test builds only).
    &["error", "test_shared"],
    &["linalg"],
    // `io` stores quantized weights in `linalg::int8`'s layout.
    &["io"],
    &["dropout", "optim"],
    &["rnn", "data"],
    &["model"],
    &["report", "dist"],
    &["run"],
    &["train"],
];

/// The tasks, as folders of `src/tasks/` and as the crate root's re-exports of them.
const TASKS: &[&str] = &[
    "lm",
    "last_token",
    "forecast",
    "classify",
    "translate",
    "tag",
    "speech",
];

fn level(part: &str) -> Option<usize> {
    LEVELS.iter().position(|l| l.contains(&part))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the library's sources are readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Where a file stands: `Shared(part)` or `Task(name)` (`lm/last_token` counts as its own task).
#[derive(Debug, Clone, PartialEq)]
enum Place {
    Root,
    Shared(String),
    Task(String),
}

fn place(rel: &Path) -> Place {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.as_slice() {
        [one] if one == "lib" => Place::Root,
        [t, rest @ ..] if t == "tasks" => match rest {
            [lm, lt, ..] if lm == "lm" && lt == "last_token" => Place::Task("last_token".into()),
            // `tasks/mod.rs` (`load`) and `tasks/tiny.rs` (a tiny run of every task, for
            // doctests) stand over all the tasks, as the crate root does.
            [name, ..] if name != "mod" && name != "tiny" => Place::Task(name.clone()),
            _ => Place::Root,
        },
        [top, ..] => Place::Shared(top.clone()),
        [] => Place::Root,
    }
}

/// The `crate::a::b` paths of a file outside comments, as (a, b).
fn crate_paths(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let code = line.trim_start();
        // A file's unit tests (its last item) may use whatever builds their inputs.
        if code == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|l| l.trim_start().starts_with("mod tests"))
        {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let mut names = rest.split("::").map(|s| {
                s.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            });
            let a = names.next().unwrap_or_default();
            let b = names.next().unwrap_or_default();
            out.insert((a, b));
        }
    }
    out
}

/// What `(a, b)` of `crate::a::b` names: a task or a shared part.
fn target(a: &str, b: &str) -> Place {
    if a == "tasks" {
        if b.is_empty() || !TASKS.contains(&b) {
            return Place::Root;
        }
        return Place::Task(b.to_string());
    }
    if TASKS.contains(&a) {
        return Place::Task(a.to_string());
    }
    Place::Shared(a.to_string())
}

fn allowed(from: &Place, to: &Place) -> bool {
    match (from, to) {
        (Place::Root, _) => true,
        (_, Place::Root) => false,
        (Place::Shared(_), Place::Task(_)) => false,
        (Place::Shared(f), Place::Shared(t)) => {
            f == t || matches!((level(f), level(t)), (Some(a), Some(b)) if b < a)
        }
        (Place::Task(_), Place::Shared(t)) => level(t).is_some(),
        (Place::Task(f), Place::Task(t)) => f == t || (f == "last_token" && t == "lm"),
    }
}

#[test]
fn imports_run_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let from = place(rel);
        if let Place::Shared(part) = &from {
            assert!(
                level(part).is_some(),
                "{}: the shared part `{part}` has no level in tests/it/layers.rs (add it to LEVELS)",
                rel.display()
            );
        }
        let text = std::fs::read_to_string(file).expect("readable source");
        for (a, b) in crate_paths(&text) {
            let to = target(&a, &b);
            if !allowed(&from, &to) {
                wrong.push(format!(
                    "{}: crate::{a}::{b} ({from:?} -> {to:?})",
                    rel.display()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run up the layers or across tasks:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    let from = place(Path::new("model/encoder.rs"));
    let paths = crate_paths("use crate::tasks::lm::model::LanguageModel;\n// crate::train::fit\n");
    assert_eq!(paths.len(), 1);
    let (a, b) = paths.iter().next().expect("one path");
    assert!(!allowed(&from, &target(a, b)));
    assert!(!allowed(
        &place(Path::new("tasks/tag/model.rs")),
        &target("tasks", "classify")
    ));
    assert!(allowed(
        &place(Path::new("tasks/lm/last_token/mod.rs")),
        &target("tasks", "lm")
    ));
    let tested =
        "use crate::model::dense;\n#[cfg(test)]\nmod tests {\n    use crate::tasks::tiny;\n}\n";
    assert_eq!(crate_paths(tested).len(), 1, "unit tests are not layers");
    assert!(!allowed(
        &place(Path::new("report/metrics.rs")),
        &target("train", "checkpoint")
    ));
}
