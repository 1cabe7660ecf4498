//! `recpipe`: run recommender pipelines from TOML with a content-addressed stage cache.

fn main() -> std::process::ExitCode {
    recpipe_runner::main()
}
