//! `seqrnn quantize`: an int8 copy of a finished run, for faster inference.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// Arguments of `seqrnn quantize`.
#[derive(clap::Args, Debug)]
pub struct QuantizeArgs {
    /// The finished run to quantize (any task).
    #[arg(long)]
    model: PathBuf,
    /// The folder of the quantized run (must not hold a run).
    #[arg(long)]
    out: PathBuf,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Writes the quantized copy and says what it holds.
pub fn quantize_cmd(a: QuantizeArgs) -> Result<()> {
    let r = seqrnn::quantize(&a.model, &a.out)
        .with_context(|| format!("cannot quantize {}", a.model.display()))?;
    let share = r.int8_bytes as f64 / r.f32_bytes.max(1) as f64;
    if a.json {
        let v = serde_json::json!({
            "task": r.task,
            "out": a.out,
            "quantized": "int8",
            "tensors": r.tensors,
            "f32_bytes": r.f32_bytes,
            "int8_bytes": r.int8_bytes,
            "size_ratio": share,
        });
        println!("{v}");
    } else {
        let mb = |b: u64| b as f64 / 1e6;
        println!(
            "{} ({} run): {} weight matrices in int8; model.safetensors {:.2} MB -> {:.2} MB ({:.1}%)",
            a.out.display(),
            r.task,
            r.tensors.len(),
            mb(r.f32_bytes),
            mb(r.int8_bytes),
            100.0 * share
        );
    }
    Ok(())
}
