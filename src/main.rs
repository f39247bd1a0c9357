fn main() {
    std::process::exit(vhdx_check::cli::run());
}
