use clap::Parser;

/// sled and the HTTP stack allocate a great deal from many threads; mimalloc keeps that from
/// becoming the bottleneck (a quarter of the server's time went to glibc malloc under load).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = candor::cli::Cli::parse();
    std::process::exit(candor::cli::run(cli));
}
