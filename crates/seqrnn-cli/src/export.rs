//! `seqrnn export`: a finished run in another format (ONNX).

use std::path::PathBuf;

use anyhow::{Context, Result};

/// The formats `seqrnn export` writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    /// ONNX (`model.onnx`, or translation's `encoder.onnx` and `decoder.onnx`, with
    /// `preprocess.json`), checked by ONNX Runtime.
    Onnx,
}

/// Arguments of `seqrnn export`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The finished run to export.
    #[arg(long)]
    model: PathBuf,
    /// The format.
    #[arg(long, value_enum, default_value = "onnx")]
    format: Format,
    /// The folder to write (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// ONNX operator-set version (13 to 21).
    #[arg(long, default_value_t = seqrnn::io::onnx::DEFAULT_OPSET)]
    opset: i64,
}

/// Writes the export and says where.
pub fn export_cmd(a: ExportArgs) -> Result<()> {
    let files = match a.format {
        Format::Onnx => seqrnn::tasks::export_onnx(&a.model, &a.out, a.opset)
            .with_context(|| format!("cannot export {}", a.model.display()))?,
    };
    println!(
        "{}: {} (opset {})",
        a.out.display(),
        files.join(", "),
        a.opset
    );
    Ok(())
}
