fn main() {
    // Die quietly on a closed pipe (`maas-e2e list | head`), as CLI tools do.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    std::process::exit(maas_e2e::cli::main());
}
