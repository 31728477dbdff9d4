//! The `billmgr-ops` binary: everything is in the library; see `cli`.

fn main() -> std::process::ExitCode {
    billmgr_ops::main()
}
