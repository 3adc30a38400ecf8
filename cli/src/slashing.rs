//! `phalanx slashing-protection`: the node's signing history of the group
//! keys as an EIP-3076 interchange file, out and in.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use phalanx_eth::interchange::Interchange;
use phalanx_node::runtime::SLASHING_DB_FILE;
use phalanx_node::slashing::SlashingDb;

#[derive(Subcommand)]
pub(crate) enum SlashingCommand {
    /// Write the history as an EIP-3076 file (for another client or a new
    /// cluster of the same validators). Safe while the node runs.
    Export(ExportArgs),
    /// Add an EIP-3076 file's history (with its watermarks) to the node's
    /// database. Stop the node first.
    Import(ImportArgs),
}

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The operator's data directory.
    #[arg(long, env = "PHALANX_DATA_DIR", default_value = ".phalanx")]
    data_dir: PathBuf,
    /// Where to write the interchange file.
    #[arg(long)]
    output_file: PathBuf,
}

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// The operator's data directory.
    #[arg(long, env = "PHALANX_DATA_DIR", default_value = ".phalanx")]
    data_dir: PathBuf,
    /// The interchange file to import.
    #[arg(long)]
    file: PathBuf,
}

#[expect(clippy::print_stdout, reason = "the command reports what it did")]
pub(crate) fn run(command: SlashingCommand) -> Result<()> {
    match command {
        SlashingCommand::Export(args) => {
            let path = args.data_dir.join(SLASHING_DB_FILE);
            let db = SlashingDb::open_existing(&path)
                .with_context(|| format!("opening the slashing database {}", path.display()))?;
            let interchange = db.export();
            let text = serde_json::to_string_pretty(&interchange)
                .context("encoding the interchange file")?;
            std::fs::write(&args.output_file, text)
                .with_context(|| format!("writing {}", args.output_file.display()))?;
            println!(
                "wrote the history of {} validators to {}",
                interchange.data.len(),
                args.output_file.display()
            );
        }
        SlashingCommand::Import(args) => {
            let text = std::fs::read_to_string(&args.file)
                .with_context(|| format!("reading {}", args.file.display()))?;
            let interchange = Interchange::from_json(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
            let path = args.data_dir.join(SLASHING_DB_FILE);
            let mut db = if path.exists() {
                SlashingDb::open_existing(&path)
            } else {
                SlashingDb::open(&path, interchange.metadata.genesis_validators_root)
            }
            .with_context(|| format!("opening the slashing database {}", path.display()))?;
            db.import(&interchange)
                .with_context(|| format!("importing {}", args.file.display()))?;
            println!(
                "imported the history of {} validators into {}",
                interchange.data.len(),
                path.display()
            );
        }
    }
    Ok(())
}
