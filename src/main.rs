//! The `pullpilot` binary: parse, run, map the outcome to an exit code. Nothing else lives here.

fn main() -> std::process::ExitCode {
    pullpilot::run(std::env::args_os())
}
