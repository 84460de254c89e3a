//! ONNX export of every task's tiny run: the files written, read back through the same
//! messages, with the inputs each task's graph documents. (ONNX Runtime runs them in
//! `python/tests/test_onnx.py`.)

use std::path::PathBuf;

use seqrnn::io::onnx;

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("seqrnn-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn every_task_exports_graphs_that_read_back() {
    let dir = scratch();
    let runs = seqrnn::tasks::tiny::all(&dir).unwrap();
    assert_eq!(runs.len(), seqrnn::tasks::TASKS.len());
    for (task, run) in runs {
        let out = dir.join("onnx").join(task);
        let files = seqrnn::tasks::export_onnx(&run, &out, onnx::DEFAULT_OPSET).unwrap();
        for f in &files {
            assert!(out.join(f).is_file(), "{task}: {f}");
        }
        let first = files.iter().find(|f| f.ends_with(".onnx")).unwrap();
        let graph = onnx::read(&out.join(first)).unwrap().graph.unwrap();
        let inputs: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
        let want = match task {
            "lm" | "last-token" => "input_ids",
            "forecast" => "window",
            "classify" => "input_ids",
            "translate" => "src_ids",
            "tag" => "word_ids",
            "speech" => "features",
            other => panic!("a task without an expectation: {other}"),
        };
        assert_eq!(inputs[0], want, "{task}");
        let recurrent = graph
            .node
            .iter()
            .filter(|n| n.op_type == "LSTM" || n.op_type == "GRU")
            .count();
        assert!(recurrent > 0, "{task}: no recurrent operator");
        // Every value a node reads is an input, an initializer or an earlier node's output.
        let mut known: Vec<&str> = inputs.clone();
        known.extend(graph.initializer.iter().map(|t| t.name.as_str()));
        known.push("");
        for n in &graph.node {
            for i in &n.input {
                assert!(
                    known.contains(&i.as_str()),
                    "{task}: {} reads {i}",
                    n.op_type
                );
            }
            known.extend(n.output.iter().map(String::as_str));
        }
        let pre = std::fs::read_to_string(out.join("preprocess.json")).unwrap();
        let pre: serde_json::Value = serde_json::from_str(&pre).unwrap();
        assert_eq!(pre["task"], task);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
