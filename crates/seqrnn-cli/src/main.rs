//! `seqrnn`: the command-line tool (see the `seqrnn_cli` library for its commands).

fn main() -> std::process::ExitCode {
    seqrnn_cli::main()
}
