//! `scanbindctl`: the scanbind command line.
//!
//! Today it has one command, `demo`, which runs the Scan to Bind life end to end on one
//! machine: an embedded AMS sandbox, the merchant's signed AMS calls, a notification
//! receiver that verifies what the sandbox sends, the binding QR in the terminal, a
//! one-click payment, a refund and an unbind — checked against the sandbox's ledger.
//! The device commands (`status`, `bind`, `pay`, ...) arrive with the daemon.

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// scanbind command line.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole Scan to Bind flow on this machine with an embedded sandbox.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
