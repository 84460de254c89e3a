//! With `--features mkl`: link oneMKL's `libmkl_rt` from `SEQRNN_MKL_DIR`.
fn main() {
    println!("cargo:rerun-if-env-changed=SEQRNN_MKL_DIR");
    if std::env::var_os("CARGO_FEATURE_MKL").is_none() {
        return;
    }
    let dir = std::env::var("SEQRNN_MKL_DIR").expect("--features mkl needs SEQRNN_MKL_DIR");
    let lib = std::fs::read_dir(&dir)
        .expect("SEQRNN_MKL_DIR is a folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("libmkl_rt.so"))
        .min_by_key(|n| n.len())
        .expect("libmkl_rt.so in SEQRNN_MKL_DIR");
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-lib=dylib:+verbatim={lib}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
}
