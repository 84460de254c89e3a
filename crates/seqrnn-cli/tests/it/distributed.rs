//! Data-parallel training under `mpirun -np 2` (the `mpi` feature): the same steps as one
//! process, one clear failure when a rank dies, and refused bad launches.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use seqrnn::io::tensors::TensorFile;

use crate::common::*;

/// `mpirun -np N` around the built binary, with what Open MPI needs as root and in a container.
fn mpirun(np: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-np", &np.to_string()])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .env_remove("SEQRNN_DATA");
    c
}

/// Runs `seqrnn ARGS…` on `np` ranks (`np == 0`: as one plain process), logging every step's
/// loss to `log`.
fn run(np: usize, args: &[&str], log: &Path) -> Output {
    let mut c = match np {
        0 => bin(),
        n => {
            let mut c = mpirun(n);
            c.arg(env!("CARGO_BIN_EXE_seqrnn"));
            c
        }
    };
    c.args(args)
        .env("SEQRNN_STEP_LOG", log)
        .output()
        .expect("run mpirun")
}

/// A word corpus of a few hundred tokens.
fn corpus(dir: &Path) {
    let words = [
        "the", "cat", "sat", "on", "mat", "a", "dog", "saw", "log", "and", "ran", "far",
    ];
    let line = |i: usize| -> String {
        (0..3 + i % 5)
            .map(|j| words[(i * 7 + j * j * 3 + j) % words.len()])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let text = |n: usize, off: usize| (0..n).map(|i| line(i + off) + "\n").collect::<String>();
    std::fs::write(dir.join("train.txt"), text(120, 0)).unwrap();
    std::fs::write(dir.join("valid.txt"), text(20, 500)).unwrap();
    std::fs::write(dir.join("test.txt"), text(20, 900)).unwrap();
}

/// `epoch,step,loss` lines of a step log.
fn step_losses(log: &Path) -> Vec<f64> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect()
}

/// The parameter block of a run's checkpoint.
fn final_params(run: &Path) -> Vec<f32> {
    let f = TensorFile::load(&run.join("checkpoint.safetensors")).unwrap();
    f.get("params").expect("params tensor").data.clone()
}

/// `max |a − b| / max |a|`.
fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    let diff = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs() as f64));
    diff / scale
}

/// Trains `args` on one process and on two ranks; asserts equal step losses and final weights
/// (1e-5 relative) and returns the number of steps.
fn one_vs_two(name: &str, args: impl Fn(&str) -> Vec<String>) -> usize {
    let dir = scratch(name);
    let mut losses = Vec::new();
    let mut params = Vec::new();
    for np in [0, 2] {
        let out = dir.join(format!("run{np}"));
        let log = dir.join(format!("steps{np}.csv"));
        let a = args(out.to_str().unwrap());
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        ok(&run(np, &a, &log));
        losses.push(step_losses(&log));
        params.push(final_params(&out));
    }
    assert!(!losses[0].is_empty());
    assert_eq!(losses[0].len(), losses[1].len());
    for (i, (a, b)) in losses[0].iter().zip(&losses[1]).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs(),
            "{name}: step {i}: {a} vs {b}"
        );
    }
    let d = rel_diff(&params[0], &params[1]);
    assert!(d <= 1e-5, "{name}: final weights differ by {d:e}");
    losses[0].len()
}

/// `line` split at spaces (no argument here holds one).
fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

fn lm_args(data: &Path, out: &str, dropout: &str) -> Vec<String> {
    lm_args_with(data, out, dropout, "--batch 4 --epochs 2 --lr 1")
}

fn lm_args_with(data: &Path, out: &str, dropout: &str, rest: &str) -> Vec<String> {
    words(&format!(
        "train --data {} --out {out} --hidden 16 --layers 2 --bptt 6 --dropout {dropout} --threads 1 {rest}",
        data.display()
    ))
}

#[test]
fn two_ranks_train_a_language_model_as_one_process() {
    let data = scratch("lm-data");
    corpus(&data);
    for dropout in ["0", "0.5"] {
        let steps = one_vs_two(&format!("lm-{dropout}"), |out| lm_args(&data, out, dropout));
        assert!(steps >= 10, "{steps}");
    }
}

/// A last layer of its own size packs its state per layer: two ranks split and gather it (at
/// every checkpoint) as one process would. The kill test below resumes such a run mid-epoch.
#[test]
fn a_smaller_last_layer_trains_on_two_ranks_as_one_process() {
    let data = scratch("last-data");
    corpus(&data);
    let rest = "--batch 4 --epochs 2 --lr 1 --last-hidden 8 --checkpoint-every 3";
    let steps = one_vs_two("lm-last", |out| lm_args_with(&data, out, "0.5", rest));
    assert!(steps >= 10, "{steps}");
}

/// The minimal cells' scan splits over ranks like any cell: two ranks train as one process.
#[test]
fn minimal_cells_train_on_two_ranks_as_one_process() {
    let data = scratch("min-data");
    corpus(&data);
    for cell in ["mingru", "minlstm"] {
        let rest = format!("--batch 4 --epochs 2 --lr 1 --cell {cell}");
        let steps = one_vs_two(&format!("lm-{cell}"), |out| {
            lm_args_with(&data, out, "0.5", &rest)
        });
        assert!(steps >= 10, "{cell}: {steps}");
    }
}

#[test]
fn two_ranks_train_a_classifier_as_one_process() {
    let data = scratch("classify-data");
    let line = |i: usize| {
        let (label, word) = if i.is_multiple_of(2) {
            ("pos", "good")
        } else {
            ("neg", "bad")
        };
        let fill = ["the", "film", "was", "very", "plot"];
        let mut w: Vec<&str> = (0..1 + i % 4).map(|j| fill[(i + j) % 5]).collect();
        w.insert(i % (w.len() + 1), word);
        format!("{label}\t{}\n", w.join(" "))
    };
    for (split, n) in [("train", 60), ("dev", 12), ("test", 12)] {
        let text: String = std::iter::once("label\tsentence\n".to_string())
            .chain((0..n).map(|i| line(i + n)))
            .collect();
        std::fs::write(data.join(format!("{split}.tsv")), text).unwrap();
    }
    let d = data.to_str().unwrap().to_string();
    for dropout in ["0", "0.5"] {
        one_vs_two(&format!("classify-{dropout}"), |out| {
            words(&format!(
                "classify train --data {d} --out {out} --hidden 8 --embed 6 --epochs 2 --batch 8 --lr 0.01 --dropout {dropout} --threads 1"
            ))
        });
    }
}

#[test]
fn two_ranks_train_a_translation_model_as_one_process() {
    let data = scratch("translate-data");
    let (src, tgt) = (
        ["ein", "zwei", "hund", "katze", "rot"],
        ["one", "two", "dog", "cat", "red"],
    );
    for (split, n) in [("train", 40), ("val", 6), ("test", 6)] {
        let (mut s, mut t) = (String::new(), String::new());
        for i in 0..n {
            let ids: Vec<usize> = (0..1 + i % 4).map(|j| (i * 3 + j * 2) % 5).collect();
            s += &ids.iter().map(|&k| src[k]).collect::<Vec<_>>().join(" ");
            t += &ids.iter().map(|&k| tgt[k]).collect::<Vec<_>>().join(" ");
            s.push('\n');
            t.push('\n');
        }
        std::fs::write(data.join(format!("{split}.de")), s).unwrap();
        std::fs::write(data.join(format!("{split}.en")), t).unwrap();
    }
    let d = data.to_str().unwrap().to_string();
    for dropout in ["0", "0.3"] {
        one_vs_two(&format!("translate-{dropout}"), |out| {
            words(&format!(
                "translate train --data {d} --src de --tgt en --test test --out {out} --tokenizer word --embed 6 --hidden 5 --dec-hidden 7 --dec-layers 2 --epochs 2 --batch 8 --lr 0.01 --dropout {dropout} --beam 2 --threads 1"
            ))
        });
    }
}

#[test]
fn two_ranks_train_a_tagger_as_one_process() {
    let data = scratch("tag-data");
    let mut text = String::new();
    for i in 0..40 {
        let name = ["Anna", "Boris", "Clara"][i % 3];
        text += &format!("{name} I-PER\n");
        for j in 0..1 + i % 3 {
            text += &format!("{} O\n", ["went", "to", "see"][(i + j) % 3]);
        }
        text += &format!("{} I-LOC\n\n", ["Paris", "Oslo"][i % 2]);
    }
    let f = data.join("train.txt");
    std::fs::write(&f, text).unwrap();
    let f = f.to_str().unwrap().to_string();
    for (dropout, head) in [("0", "--crf"), ("0.3", "--crf"), ("0.3", "")] {
        one_vs_two(&format!("tag-{dropout}{head}"), |out| {
            words(&format!(
                "tag train --train {f} --dev {f} --out {out} {head} --embed 5 --char-embed 3 --char-hidden 2 --hidden 4 --epochs 2 --batch 8 --lr 0.01 --dropout {dropout} --threads 1"
            ))
        });
    }
}

#[test]
fn two_ranks_train_a_speech_model_as_one_process() {
    let data = scratch("speech-data");
    let tr = speech_corpus(&data, "train", 16, 0);
    let va = speech_corpus(&data, "valid", 4, 1);
    for (dropout, masks) in [("0", "0"), ("0.3", "2")] {
        one_vs_two(&format!("speech-{dropout}"), |out| {
            words(&format!(
                "speech train --train {tr} --valid {va} --out {out} --mels 12 --hidden 6 --layers 1 --stack 3 --epochs 2 --batch 8 --lr 0.01 --dropout {dropout} --freq-masks {masks} --time-masks {masks} --time-width 4 --threads 1"
            ))
        });
    }
}

#[test]
fn two_ranks_train_a_forecaster_as_one_process() {
    let dir = scratch("forecast-data");
    let table = dir.join("series.csv");
    let mut s = String::from("a,b\n");
    for r in 0..200 {
        let t = r as f64;
        s += &format!("{},{}\n", (t * 0.26).sin(), (t * 0.1).cos() * 2.0 + 1.0);
    }
    std::fs::write(&table, s).unwrap();
    let t = table.to_str().unwrap().to_string();
    one_vs_two("forecast", |out| {
        words(&format!(
            "forecast train --data {t} --out {out} --lookback 8 --horizon 2 --hidden 8 --epochs 2 --batch 7 --lr 0.01 --threads 1"
        ))
    });
}

/// The process of `rank` in the job training into `out`.
fn rank_pid(out: &Path, rank: usize) -> Option<u32> {
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    for entry in std::fs::read_dir("/proc").ok()? {
        let p = entry.ok()?.path();
        let Ok(cmd) = std::fs::read(p.join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if !cmd.contains(out.to_str()?) || cmd.starts_with("mpirun") {
            continue;
        }
        let env = std::fs::read(p.join("environ")).unwrap_or_default();
        if env.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            return p.file_name()?.to_str()?.parse().ok();
        }
    }
    None
}

#[test]
fn a_killed_rank_ends_the_job_and_the_checkpoint_resumes_on_one_or_two_ranks() {
    killed_and_resumed("kill", "");
    // The carried state of a last layer of its own size, split and gathered per layer.
    killed_and_resumed("kill-last", "--last-hidden 8");
}

/// Kills rank 1 of a two-rank run once a checkpoint past the first epoch is on disk, then
/// resumes the checkpoint on two ranks (bit for bit) and on one (to 1e-5).
fn killed_and_resumed(name: &str, model: &str) {
    let data = scratch(&format!("{name}-data"));
    corpus(&data);
    let dir = scratch(name);
    let args = |out: &Path, extra: &[&str]| -> Vec<String> {
        let mut a = lm_args_with(
            &data,
            out.to_str().unwrap(),
            "0.5",
            &format!("--batch 4 --epochs 6 --lr 1 --checkpoint-every 3 {model}"),
        );
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // The uninterrupted two-rank run.
    let whole = dir.join("whole");
    let a = args(&whole, &[]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    ok(&run(2, &a, &dir.join("whole.csv")));
    // The same run, rank 1 killed once a checkpoint past the first epoch is on disk.
    let killed = dir.join("killed");
    let a = args(&killed, &[]);
    let mut child = mpirun(2)
        .arg(env!("CARGO_BIN_EXE_seqrnn"))
        .args(&a)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = killed.join("metrics.csv");
    while std::fs::read_to_string(&metrics).map_or(0, |m| m.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "no epoch finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rank_pid(&killed, 1).expect("rank 1's process");
    let killed_at = Instant::now();
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "the job hangs"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(err.contains("rank 1"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The checkpoint goes on, on two ranks (bit for bit) and on one (to 1e-5).
    let saved = dir.join("saved");
    copy_dir(&killed, &saved);
    let resumed = args(&killed, &["--resume"]);
    let resumed: Vec<&str> = resumed.iter().map(String::as_str).collect();
    ok(&run(2, &resumed, &dir.join("resumed2.csv")));
    assert_eq!(final_params(&killed), final_params(&whole));
    let resumed = args(&saved, &["--resume"]);
    let resumed: Vec<&str> = resumed.iter().map(String::as_str).collect();
    ok(&run(0, &resumed, &dir.join("resumed1.csv")));
    let d = rel_diff(&final_params(&whole), &final_params(&saved));
    assert!(d <= 1e-5, "resumed on one process: {d:e}");
}

fn copy_dir(from: &Path, to: &PathBuf) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn more_ranks_than_batch_rows_are_refused() {
    let data = scratch("bad-data");
    corpus(&data);
    let out = scratch("bad-batch").join("run");
    let a = lm_args_with(&data, out.to_str().unwrap(), "0", "--batch 2");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let t0 = Instant::now();
    let o = run(3, &a, &scratch("bad-batch").join("log"));
    fails(
        &o,
        "cannot split the training batch (--batch) of 2 rows across 3 processes",
    );
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert!(
        !out.join("config.json").exists(),
        "a refused run leaves no run behind"
    );
}

#[test]
fn ranks_started_with_different_flags_are_refused() {
    let data = scratch("mismatch-data");
    corpus(&data);
    let out = scratch("mismatch").join("run");
    let a = lm_args(&data, out.to_str().unwrap(), "0");
    let b = lm_args_with(
        &data,
        out.to_str().unwrap(),
        "0",
        "--batch 4 --epochs 2 --lr 0.5",
    );
    let o = mpirun(1)
        .arg(env!("CARGO_BIN_EXE_seqrnn"))
        .args(&a)
        .args([":", "-np", "1", env!("CARGO_BIN_EXE_seqrnn")])
        .args(&b)
        .output()
        .unwrap();
    fails(&o, "rank 1 was started with other settings");
    assert!(!out.join("config.json").exists());
}

#[test]
fn commands_that_do_not_train_refuse_to_run_across_ranks() {
    let o = mpirun(2)
        .args([
            env!("CARGO_BIN_EXE_seqrnn"),
            "eval",
            "--model",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    fails(&o, "only the training commands");
}
