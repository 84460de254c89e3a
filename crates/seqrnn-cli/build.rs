//! With the `mkl` feature: let the binary find `libmkl_rt` in `SEQRNN_MKL_DIR` at run time (the
//! library crate's build script links it).

fn main() {
    println!("cargo:rerun-if-env-changed=SEQRNN_MKL_DIR");
    if std::env::var_os("CARGO_FEATURE_MKL").is_none() {
        return;
    }
    if let Some(dir) = std::env::var_os("SEQRNN_MKL_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.to_string_lossy());
    }
}
