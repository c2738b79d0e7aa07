//! The `candor` command line (spec section 7): one file per command.

pub mod client;
pub mod keygen;
pub mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "candor", version, about = "A public, verifiable ledger of government demands on technology companies")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the log service.
    Serve(serve::Args),
    /// Create a signed-note key pair (NAME.key, mode 0600, and NAME.vkey).
    Keygen(keygen::Args),
}

/// Runs a command; the exit code follows spec section 7 (0 ok, 1 verification failed,
/// 2 usage or network error).
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Keygen(a) => keygen::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("candor: {e:#}");
            2
        }
    }
}
