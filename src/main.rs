fn main() {
    std::process::exit(maas_e2e::cli::main());
}
