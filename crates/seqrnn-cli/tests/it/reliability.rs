//! Crash safety, exact resume and bad input, on real `seqrnn` processes: a run killed with
//! SIGKILL at arbitrary moments and resumed ends bit-identical to an uninterrupted one; Ctrl-C
//! writes a checkpoint and says how to resume; damaged checkpoints, vocabularies and state_dicts
//! are named and refused; a write that fails (file-size limit) keeps the previous checkpoint.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use seqrnn::io::tensors::{Tensor, TensorFile};

use crate::common::*;

/// A tiny word corpus (plain layout).
fn corpus(dir: &Path) {
    word_corpus(
        dir,
        6,
        90,
        "the cat sat on the log\na dog met the cat\n",
        "the dog sat on the mat\n",
    );
}

/// The run every exact-resume test trains: Adam with a decaying learning rate, dropout (so the
/// generator matters), two layers (carried h and c), a checkpoint every 3 steps, one thread.
fn run_args(data: &Path, out: &Path) -> Vec<String> {
    [
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--hidden",
        "24",
        "--layers",
        "2",
        "--bptt",
        "6",
        "--batch",
        "3",
        "--epochs",
        "8",
        "--optim",
        "adam",
        "--lr",
        "0.01",
        "--lr-decay",
        "0.7",
        "--decay-after",
        "2",
        "--dropout",
        "0.2",
        "--seed",
        "5",
        "--threads",
        "1",
        "--checkpoint-every",
        "3",
    ]
    .map(String::from)
    .to_vec()
}

fn resume_args(data: &Path, out: &Path) -> Vec<String> {
    let mut a = run_args(data, out);
    a.push("--resume".into());
    a
}

/// Starts seqrnn; `stderr` piped only where the caller drains it.
fn spawn(args: &[String], stderr: Stdio) -> Child {
    bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start seqrnn")
}

/// The columns of metrics.csv that do not depend on timing.
fn metrics(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{},{},{},{}", f[0], f[1], f[2], f[3], f[6])
        })
        .collect()
}

/// Asserts that two safetensors files hold bit-identical tensors; returns their metadata.
fn same_tensors(a: &Path, b: &Path) -> [std::collections::BTreeMap<String, String>; 2] {
    let (fa, fb) = (TensorFile::load(a).unwrap(), TensorFile::load(b).unwrap());
    assert_eq!(
        fa.tensors.keys().collect::<Vec<_>>(),
        fb.tensors.keys().collect::<Vec<_>>()
    );
    let bits = |t: &Tensor| t.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for (name, t) in &fa.tensors {
        assert!(
            t.shape == fb.tensors[name].shape && bits(t) == bits(&fb.tensors[name]),
            "`{name}` of {} differs from the uninterrupted run",
            a.display()
        );
    }
    [fa.metadata, fb.metadata]
}

/// Asserts that `run` ended exactly as the uninterrupted `reference`: the same best weights
/// (tensors and metadata), the same final checkpoint tensors and position, the same metrics.
fn same_as_reference(run: &Path, reference: &Path) {
    let [a, b] = same_tensors(
        &run.join("model.safetensors"),
        &reference.join("model.safetensors"),
    );
    assert_eq!(a, b);
    let [a, b] = same_tensors(
        &run.join("checkpoint.safetensors"),
        &reference.join("checkpoint.safetensors"),
    );
    let resume = |m: &std::collections::BTreeMap<String, String>| {
        let mut v: serde_json::Value = serde_json::from_str(&m["resume"]).unwrap();
        v.as_object_mut().unwrap().remove("partial");
        v
    };
    assert_eq!(resume(&a), resume(&b));
    assert_eq!(metrics(run), metrics(reference));
}

/// Trains the reference run once; returns its folder and how long it took.
fn reference(d: &Path) -> (PathBuf, Duration) {
    let run = d.join("reference");
    let t0 = Instant::now();
    ok(&bin().args(run_args(d, &run)).output().unwrap());
    (run, t0.elapsed())
}

#[test]
fn sigkill_at_any_moment_then_resume_is_bit_identical() {
    let d = scratch("kill");
    corpus(&d);
    let (reference, took) = reference(&d);
    let run = d.join("killed");
    // Kill after these fractions of the reference's duration, one attempt each, until a process
    // finishes on its own; the first is early enough to land before the first checkpoint at
    // times, the others inside the epochs and around checkpoint writes.
    let fractions = [0.02, 0.3, 0.15, 0.45, 0.1, 0.25, 0.6, 0.2, 0.35, 0.5];
    let mut kills = 0;
    let mut finished = false;
    for f in fractions {
        // Without config.json the folder is not a run yet: start it again (the same command);
        // with it, resume.
        let args = if run.join("config.json").is_file() {
            resume_args(&d, &run)
        } else {
            run_args(&d, &run)
        };
        let mut child = spawn(&args, Stdio::null());
        std::thread::sleep(took.mul_f64(f));
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill(); // SIGKILL
        }
        let status = child.wait().unwrap();
        if status.success() {
            finished = true;
            break;
        }
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "a process ended otherwise than by the kill: {status:?}"
        );
        kills += 1;
    }
    if !finished {
        let args = if run.join("config.json").is_file() {
            resume_args(&d, &run)
        } else {
            run_args(&d, &run)
        };
        ok(&bin().args(args).output().unwrap());
    }
    assert!(kills >= 1, "no kill landed while training ran");
    eprintln!("{kills} kill(s) landed");
    same_as_reference(&run, &reference);
    // No temporary files are left as if they were whole.
    for e in std::fs::read_dir(&run).unwrap() {
        let name = e.unwrap().file_name();
        let name = name.to_string_lossy();
        assert!(
            !name.ends_with(".safetensors") || !name.contains(".tmp"),
            "{name}"
        );
    }
}

/// The kill that lands after the last epoch's checkpoint, before `summary.json`: the resume
/// trains nothing, writes the final figures, and a second resume is refused as complete.
#[test]
fn a_run_killed_before_its_summary_is_finished_by_resume() {
    let d = scratch("summary");
    corpus(&d);
    let (reference, _) = reference(&d);
    let run = d.join("unfinished");
    ok(&bin().args(run_args(&d, &run)).output().unwrap());
    let summary = |dir: &Path| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let written = summary(&run);
    std::fs::remove_file(run.join("summary.json")).unwrap();
    let out = bin().args(resume_args(&d, &run)).output().unwrap();
    let text = ok(&out);
    assert!(text.contains("8 epochs"), "{text}");
    same_as_reference(&run, &reference);
    let again = summary(&run);
    for key in [
        "valid_ppl",
        "test_ppl",
        "best_epoch",
        "epochs",
        "steps",
        "train_seconds",
    ] {
        assert_eq!(again[key], written[key], "{key}");
    }
    assert_eq!(again["test_ppl"], summary(&reference)["test_ppl"]);
    let out = bin().args(resume_args(&d, &run)).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the run is complete (8 of 8 epochs)"), "{err}");
}

#[test]
fn ctrl_c_writes_a_checkpoint_says_how_to_resume_and_resume_is_exact() {
    let d = scratch("sigint");
    corpus(&d);
    let (reference, _) = reference(&d);
    // A machine so starved that the whole run ends between two polls would let the process
    // finish before the signal: then try again (never seen; bounded).
    for attempt in 1..=3 {
        let run = d.join(format!("interrupted-{attempt}"));
        let child = spawn(&run_args(&d, &run), Stdio::piped());
        // Wait for the first checkpoint inside the first epoch (the Ctrl-C handler is
        // installed before the initial checkpoint), so that the signal lands mid-training.
        let t0 = Instant::now();
        let steps_done = || -> u64 {
            let Ok(f) = TensorFile::load(&run.join("checkpoint.safetensors")) else {
                return 0;
            };
            let v: serde_json::Value = serde_json::from_str(&f.metadata["resume"]).unwrap();
            v["steps_done"].as_u64().unwrap()
        };
        while steps_done() < 3 {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "training never started"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        if out.status.success() {
            eprintln!("attempt {attempt}: the run ended before the signal arrived");
            continue;
        }
        assert_eq!(out.status.code(), Some(130), "{err}");
        assert!(err.contains("interrupted after"), "{err}");
        assert!(err.contains("--resume"), "{err}");
        ok(&bin().args(resume_args(&d, &run)).output().unwrap());
        same_as_reference(&run, &reference);
        return;
    }
    panic!("three runs ended before Ctrl-C reached them");
}

/// `base` (flag, value pairs; an empty value for a switch) with `extra` replacing or adding
/// flags, as command-line words.
fn with_flags(base: &[(&str, &str)], extra: &[(&str, &str)]) -> Vec<String> {
    let mut flags: Vec<(String, String)> = base
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in extra {
        match flags.iter_mut().find(|f| f.0 == *k) {
            Some(f) => f.1 = v.to_string(),
            None => flags.push((k.to_string(), v.to_string())),
        }
    }
    let mut args = vec!["train".to_string()];
    for (k, v) in flags {
        if v.is_empty() {
            args.push(k);
        } else {
            // `--flag=value`: a negative value would otherwise read as a flag.
            args.push(format!("{k}={v}"));
        }
    }
    args
}

/// A tiny training into `out` with `extra` flags.
fn small_args(d: &Path, out: &Path, extra: &[(&str, &str)]) -> Vec<String> {
    let base = [
        ("--data", d.to_str().unwrap()),
        ("--out", out.to_str().unwrap()),
        ("--hidden", "8"),
        ("--layers", "1"),
        ("--bptt", "5"),
        ("--batch", "2"),
        ("--epochs", "1"),
        ("--threads", "1"),
    ];
    with_flags(&base, extra)
}

/// A run trained with `extra` flags into `d/name`.
fn small_run(d: &Path, name: &str, extra: &[(&str, &str)]) -> PathBuf {
    let run = d.join(name);
    ok(&bin().args(small_args(d, &run, extra)).output().unwrap());
    run
}

fn resume(d: &Path, run: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--data",
        d.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--resume",
        "--epochs",
        "2",
        "--threads",
        "1",
    ];
    args.extend_from_slice(extra);
    seqrnn(&args)
}

#[test]
fn damaged_checkpoints_are_named_and_refused() {
    let d = scratch("ckpt");
    corpus(&d);
    let run = small_run(&d, "run", &[]);
    let ck = run.join("checkpoint.safetensors");
    let good = std::fs::read(&ck).unwrap();

    // Truncated.
    std::fs::write(&ck, &good[..good.len() / 2]).unwrap();
    let e = fails(&resume(&d, &run, &[]), "checkpoint.safetensors");
    assert!(e.contains("truncated or corrupt"), "{e}");
    assert!(e.contains("--force"), "{e}");

    // One flipped bit in the weights.
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n - 5] ^= 0x01;
    std::fs::write(&ck, &flipped).unwrap();
    fails(&resume(&d, &run, &[]), "checksum mismatch");

    // From another architecture: the checkpoint of a wider model.
    let other = small_run(
        &d,
        "other",
        &[("--hidden", "12"), ("--keep-epoch-checkpoints", "")],
    );
    // (Each epoch's checkpoint is kept on request.)
    assert_eq!(
        std::fs::read(other.join("checkpoints/epoch-001.safetensors")).unwrap(),
        std::fs::read(other.join("checkpoint.safetensors")).unwrap()
    );
    std::fs::copy(other.join("checkpoint.safetensors"), &ck).unwrap();
    fails(&resume(&d, &run, &[]), "another architecture");

    // From a newer format.
    let mut f = TensorFile::from_bytes(&good).unwrap();
    f.metadata
        .insert("format".into(), "seqrnn-checkpoint-99".into());
    std::fs::write(&ck, f.to_bytes_sealed().unwrap()).unwrap();
    fails(&resume(&d, &run, &[]), "newer seqrnn (checkpoint format 99");

    // Missing altogether.
    std::fs::remove_file(&ck).unwrap();
    fails(&resume(&d, &run, &[]), "holds no checkpoint.safetensors");

    // A config.json from a newer format.
    std::fs::write(&ck, &good).unwrap();
    let cfg = std::fs::read_to_string(run.join("config.json")).unwrap();
    std::fs::write(
        run.join("config.json"),
        cfg.replacen("\"format\": 1", "\"format\": 7", 1),
    )
    .unwrap();
    fails(&resume(&d, &run, &[]), "newer seqrnn (format 7");
    fails(
        &seqrnn(&["generate", "--model", run.to_str().unwrap()]),
        "newer seqrnn (format 7",
    );
    std::fs::write(run.join("config.json"), cfg).unwrap();

    // Intact again: the resume works.
    ok(&resume(&d, &run, &[]));

    // A truncated or corrupt model.safetensors.
    let model = run.join("model.safetensors");
    let m = std::fs::read(&model).unwrap();
    let mut bad = m.clone();
    let n = bad.len();
    bad[n - 3] ^= 0x40;
    std::fs::write(&model, &bad).unwrap();
    fails(
        &seqrnn(&["generate", "--model", run.to_str().unwrap()]),
        "checksum mismatch",
    );
}

#[test]
fn a_vocabulary_that_does_not_match_is_refused() {
    let d = scratch("vocab");
    corpus(&d);
    let run = small_run(&d, "run", &[]);
    let vocab = std::fs::read_to_string(run.join("vocab.txt")).unwrap();
    let mut lines: Vec<&str> = vocab.lines().collect();
    // Same tokens, two swapped: the count matches but the ids do not.
    lines.swap(0, 1);
    std::fs::write(run.join("vocab.txt"), lines.join("\n") + "\n").unwrap();
    fails(
        &seqrnn(&["generate", "--model", run.to_str().unwrap()]),
        "does not match the vocabulary the model was trained with",
    );
    fails(
        &resume(&d, &run, &[]),
        "different vocabulary from the run's vocab.txt",
    );
    // One token more.
    std::fs::write(run.join("vocab.txt"), format!("{vocab}zebra\n")).unwrap();
    fails(
        &seqrnn(&["generate", "--model", run.to_str().unwrap()]),
        "but the model was trained with",
    );
    // Not UTF-8.
    std::fs::write(run.join("vocab.txt"), b"the\n\xffcat\n").unwrap();
    fails(
        &seqrnn(&["generate", "--model", run.to_str().unwrap()]),
        "line 2 is not valid UTF-8",
    );
    // A corpus other than the run's, with the same vocabulary but a different length.
    std::fs::write(run.join("vocab.txt"), &vocab).unwrap();
    let other = d.join("other");
    std::fs::create_dir_all(&other).unwrap();
    corpus(&other);
    let train = std::fs::read_to_string(other.join("train.txt")).unwrap();
    std::fs::write(other.join("train.txt"), format!("{train}{train}")).unwrap();
    fails(&resume(&other, &run, &[]), "not the same corpus");
}

/// A tiny PyTorch-style LSTM state_dict: vocabulary 5, embedding 3, hidden 2, one layer.
fn state_dict() -> TensorFile {
    let mut f = TensorFile::default();
    let mut put = |name: &str, shape: &[usize]| {
        let n = shape.iter().product();
        f.tensors.insert(
            name.into(),
            Tensor {
                shape: shape.to_vec(),
                data: (0..n).map(|i| (i as f32 * 0.37).sin() * 0.1).collect(),
            },
        );
    };
    put("encoder.weight", &[5, 3]);
    put("rnn.weight_ih_l0", &[8, 3]);
    put("rnn.weight_hh_l0", &[8, 2]);
    put("rnn.bias_ih_l0", &[8]);
    put("rnn.bias_hh_l0", &[8]);
    put("decoder.weight", &[5, 2]);
    put("decoder.bias", &[5]);
    f
}

#[test]
fn state_dicts_with_missing_or_misshapen_tensors_are_named() {
    let d = scratch("import");
    std::fs::write(d.join("vocab.txt"), "a\nb\nc\nd\ne\n").unwrap();
    let import = |f: &TensorFile, out: &str| {
        let p = d.join(format!("{out}.safetensors"));
        std::fs::write(&p, f.to_bytes().unwrap()).unwrap();
        seqrnn(&[
            "import",
            "--torch",
            p.to_str().unwrap(),
            "--vocab",
            d.join("vocab.txt").to_str().unwrap(),
            "--out",
            d.join(out).to_str().unwrap(),
        ])
    };
    let good = state_dict();
    ok(&import(&good, "good"));

    let mut f = good.clone();
    f.tensors.remove("decoder.bias");
    fails(&import(&f, "missing"), "missing tensor `decoder.bias`");
    assert!(!d.join("missing/config.json").exists());

    let mut f = good.clone();
    f.tensors.remove("encoder.weight");
    fails(&import(&f, "noenc"), "missing tensor `encoder.weight`");

    let mut f = good.clone();
    f.tensors.insert(
        "rnn.bias_hh_l0".into(),
        Tensor {
            shape: vec![7],
            data: vec![0.0; 7],
        },
    );
    fails(
        &import(&f, "shape"),
        "tensor `rnn.bias_hh_l0` has shape [7], the model needs [8]",
    );

    let mut f = good.clone();
    f.tensors.insert(
        "rnn.weight_hh_l0".into(),
        Tensor {
            shape: vec![5, 2],
            data: vec![0.0; 10],
        },
    );
    fails(&import(&f, "cell"), "neither LSTM [4H, H] nor GRU [3H, H]");

    let mut f = good.clone();
    f.tensors.get_mut("decoder.weight").unwrap().data[3] = f32::NAN;
    fails(&import(&f, "nan"), "non-finite value at index 3");

    // Not a safetensors file at all.
    let p = d.join("garbage.safetensors");
    std::fs::write(&p, b"PK\x03\x04 this is a zip").unwrap();
    fails(
        &seqrnn(&[
            "import",
            "--torch",
            p.to_str().unwrap(),
            "--vocab",
            d.join("vocab.txt").to_str().unwrap(),
            "--out",
            d.join("g").to_str().unwrap(),
        ]),
        "not a valid safetensors file",
    );
}

#[test]
fn hyperparameters_that_make_no_sense_are_refused() {
    let d = scratch("hyper");
    corpus(&d);
    let data = d.to_str().unwrap();
    let out = d.join("r");
    for (flag, value, needle) in [
        ("--layers", "0", "number of layers must be at least 1"),
        ("--embed", "0", "embedding size must be at least 1"),
        ("--batch", "0", "batch sizes must be at least 1"),
        ("--eval-batch", "0", "batch sizes must be at least 1"),
        ("--epochs", "0", "epochs must be at least 1"),
        ("--dropout", "-0.1", "dropout must be in [0, 1)"),
        ("--dropout", "1", "dropout must be in [0, 1)"),
        ("--lr", "-1", "learning rate must be positive"),
        ("--lr", "nan", "learning rate must be positive"),
        ("--lr-decay", "0", "learning-rate decay must be in (0, 1]"),
        ("--clip", "-1", "clip must be positive"),
        ("--hidden", "-3", "invalid value '-3'"),
        ("--threads", "0", "--threads must be at least 1"),
    ] {
        fails(
            &bin()
                .args(small_args(&d, &out, &[(flag, value)]))
                .output()
                .unwrap(),
            needle,
        );
        assert!(!out.join("config.json").exists(), "{flag} {value}");
    }
    let both = small_args(&d, &out, &[("--resume", ""), ("--force", "")]);
    fails(&bin().args(both).output().unwrap(), "contradict");
    let resume = small_args(&d, &out, &[("--resume", "")]);
    fails(
        &bin().args(resume).output().unwrap(),
        "holds no run to resume",
    );

    let run = small_run(&d, "gen", &[]);
    let run = run.to_str().unwrap();
    for (flag, value, needle) in [
        ("--temperature", "-1", "temperature must be positive"),
        ("--temperature", "0", "temperature must be positive"),
        ("--top-p", "0", "top-p must be in (0, 1]"),
        ("--top-p", "1.01", "top-p must be in (0, 1]"),
        ("--top-k", "0", "top-k must be at least 1"),
    ] {
        let arg = format!("{flag}={value}");
        fails(&seqrnn(&["generate", "--model", run, &arg]), needle);
    }
    fails(
        &seqrnn(&["eval", "--model", run, "--data", data, "--batch", "0"]),
        "--batch must be at least 1",
    );
}

#[test]
fn a_loss_that_diverges_after_a_checkpoint_keeps_it() {
    let d = scratch("diverge");
    corpus(&d);
    let run = d.join("run");
    let out = seqrnn(&[
        "train",
        "--data",
        d.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--hidden",
        "8",
        "--layers",
        "1",
        "--bptt",
        "5",
        "--batch",
        "2",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--lr",
        "1e30",
        "--clip",
        "1e30",
        "--checkpoint-every",
        "1",
    ]);
    let err = fails(&out, "training diverged at epoch 1, step ");
    assert!(err.contains("last good checkpoint was kept"), "{err}");
    assert!(err.contains("--lr") && err.contains("--clip"), "{err}");
    let step: u64 = err
        .split("step ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no step in: {err}"));
    assert!(step >= 2, "{err}");
    // The checkpoint written after the last good step is there, whole, and the run resumable.
    let file = TensorFile::load(&run.join("checkpoint.safetensors")).unwrap();
    let resume: serde_json::Value = serde_json::from_str(&file.metadata["resume"]).unwrap();
    assert_eq!(resume["steps_done"].as_u64(), Some(step - 1));
    assert!(run.join("config.json").is_file());
}

#[test]
fn a_write_that_fails_keeps_the_previous_checkpoint() {
    let d = scratch("full");
    corpus(&d);
    let run = small_run(&d, "run", &[("--checkpoint-every", "1")]);
    let ck = run.join("checkpoint.safetensors");
    let before = std::fs::read(&ck).unwrap();
    // A file-size limit just under the checkpoint's size makes its next write fail with EFBIG,
    // as a full disk fails with ENOSPC (SIGXFSZ ignored so that the write returns the error).
    let blocks = (before.len() - 1) / 1024;
    let script = format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\"");
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_seqrnn"))
        .args([
            "train",
            "--data",
            d.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--resume",
            "--epochs",
            "2",
            "--threads",
            "1",
        ])
        .env_remove("SEQRNN_DATA")
        .output()
        .unwrap();
    let e = fails(&out, "checkpoint.safetensors.tmp");
    assert!(
        e.contains("the previous checkpoint.safetensors was kept"),
        "{e}"
    );
    assert_eq!(std::fs::read(&ck).unwrap(), before);
    assert!(!run.join("checkpoint.safetensors.tmp").exists());
    // With room again, the run resumes from the kept checkpoint.
    ok(&resume(&d, &run, &[]));
}
