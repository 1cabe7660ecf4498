//! `recpipe-e2e`: the `recpipe` binary with the test-only `_test` stage kind, built only with
//! the `test-stages` feature, for the end-to-end tests of the runner itself (tests/).

fn main() -> std::process::ExitCode {
    recpipe_runner::main()
}
