//! The `candor` command line (spec section 7): one file per command.

pub mod audit;
pub mod backup;
pub mod bench;
pub mod client;
pub mod keygen;
pub mod publisher;
pub mod report;
pub mod seal;
pub mod serve;
pub mod submit;
pub mod verify_receipt;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "candor",
    version,
    about = "A public, verifiable ledger of government demands on technology companies"
)]
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
    /// Manage publishers: add and revoke (operator), rotate and recover (publisher).
    #[command(subcommand)]
    Publisher(publisher::Cmd),
    /// Publisher: record one government demand (a request record as JSON).
    Submit(submit::SubmitArgs),
    /// Publisher: correct or advance a logged request, revealed seal or aggregate.
    Update(submit::UpdateArgs),
    /// Publisher: commit now to a demand that cannot be disclosed yet.
    Seal(seal::SealArgs),
    /// Publisher: postpone a seal's disclosure, in public.
    Extend(seal::ExtendArgs),
    /// Publisher: open a seal with the salt and record kept by `candor seal`.
    Reveal(seal::RevealArgs),
    /// Publisher: a counted report for a period.
    Aggregate(report::Args),
    /// Publisher: national-security demands in the bands the law allows.
    Band(report::Args),
    /// Auditor: verify a whole log (incrementally with --state).
    Audit(audit::Args),
    /// Auditor: audit again and again; exit (or run a command) on the first failure.
    Monitor(audit::MonitorArgs),
    /// Operator: write the log as a static C2SP tlog-tiles tree (a backup any web server can serve).
    Export(backup::ExportArgs),
    /// Operator: rebuild a data directory from an exported tree, after verifying it.
    Import(backup::ImportArgs),
    /// Load generator: pre-signed writes or reads against a running log, with latency figures.
    Bench(bench::Args),
    /// Anyone: check a receipt offline (and optionally against the live log).
    VerifyReceipt(verify_receipt::Args),
}

/// Runs a command; the exit code follows spec section 7 (0 ok, 1 verification failed,
/// 2 usage or network error).
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Publisher(c) => publisher::run(c),
        Command::Submit(a) => submit::submit(a),
        Command::Update(a) => submit::update(a),
        Command::Seal(a) => seal::seal(a),
        Command::Extend(a) => seal::extend(a),
        Command::Reveal(a) => seal::reveal(a),
        Command::Aggregate(a) => report::run("aggregate", a),
        Command::Band(a) => report::run("band", a),
        Command::VerifyReceipt(a) => verify_receipt::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Export(a) => backup::export(a),
        Command::Import(a) => backup::import(a),
        Command::Monitor(a) => audit::monitor(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("candor: {e:#}");
            if e.downcast_ref::<client::VerificationFailed>().is_some() {
                1
            } else {
                2
            }
        }
    }
}
