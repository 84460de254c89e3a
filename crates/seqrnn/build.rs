//! With the `mkl` feature: link Intel oneMKL's single dynamic library, `libmkl_rt`, from the
//! folder named by `SEQRNN_MKL_DIR` (see `tools/install-mkl.sh`).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=SEQRNN_MKL_DIR");
    if std::env::var_os("CARGO_FEATURE_MKL").is_none() {
        return;
    }
    let Some(dir) = std::env::var_os("SEQRNN_MKL_DIR").map(PathBuf::from) else {
        panic!("the mkl feature needs SEQRNN_MKL_DIR: the folder holding libmkl_rt.so (tools/install-mkl.sh prints it)");
    };
    let lib = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("SEQRNN_MKL_DIR={}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("libmkl_rt.so"))
        .min_by_key(|name| name.len())
        .unwrap_or_else(|| panic!("no libmkl_rt.so in SEQRNN_MKL_DIR={}", dir.display()));
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib:+verbatim={lib}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}
