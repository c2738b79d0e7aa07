//! `candor keygen NAME`: a signed-note key pair.

use crate::keyfile;
use crate::note::SecretKey;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The key name: a publisher id (acme.example) or another note key name.
    pub name: String,
    /// Directory to write NAME.key (mode 0600) and NAME.vkey into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// File name stem, if not NAME (e.g. "recovery").
    #[arg(long)]
    pub file: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<i32> {
    let key = SecretKey::generate(&a.name)?;
    let file = a.file.unwrap_or_else(|| a.name.replace('/', "_"));
    let (skey, vkey) = keyfile::write_pair(&a.out, &file, &key)?;
    println!("{}", key.verifier());
    eprintln!(
        "wrote {} (secret, mode 0600) and {}",
        skey.display(),
        vkey.display()
    );
    Ok(0)
}
