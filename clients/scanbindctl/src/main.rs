//! `scanbindctl`: the scanbind command line.
//!
//! Device commands talk to `scanbindd` through `scanbind-client` (the same API apps
//! use); `demo` runs the demo program (`scanbind-demo`), which starts the whole system
//! on this machine and walks through it; `doctor` checks the machine. Every command prints for people by default and one JSON
//! document (or JSON lines, for `bind` and `agent`) with `--json`. Exit codes are in
//! [`exit`]. `apps` and `profiles` edit the payment policy; `agent` is the terminal
//! display agent.

mod agent;
mod apps;
mod commands;
mod demo;
mod doctor;
mod policy_file;
mod profiles;
mod subscriptions;
mod tty;

// Shared with the demo program through the `scanbindctl` library (src/lib.rs).
use scanbindctl::{exit, output, qr, show};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory as _, Parser, Subcommand};
use scanbind_client::Transport;

/// scanbind command line: bind a wallet, pay, refund, and run the whole system as a demo.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Exit codes: 0 success, 1 failure, 2 bad arguments, 3 the daemon cannot be \
                  reached, 4 the daemon refused the request, 5 the payment or binding did not \
                  succeed, 6 timed out waiting."
)]
pub struct Cli {
    /// More log output on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Print JSON instead of text (one document; `bind` and `agent` print JSON lines).
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: Command,
}

/// Where the daemon is (default: $SCANBIND_SOCKET, $SCANBIND_BUS_ADDRESS, the session
/// bus, then the system bus).
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// Talk to the daemon on the session bus.
    #[arg(long, global = true, conflicts_with_all = ["system", "address", "socket"])]
    session: bool,
    /// Talk to the daemon on the system bus.
    #[arg(long, global = true, conflicts_with_all = ["address", "socket"])]
    system: bool,
    /// Talk to the daemon on the bus at this D-Bus address (unix:path=...).
    #[arg(
        long,
        global = true,
        value_name = "DBUS ADDRESS",
        conflicts_with = "socket"
    )]
    address: Option<String>,
    /// Talk to the daemon over its peer-to-peer socket (scanbindd --p2p PATH).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
}

impl ConnArgs {
    fn transport(&self) -> Transport {
        if self.session {
            Transport::Session
        } else if self.system {
            Transport::System
        } else if let Some(a) = &self.address {
            Transport::Address(a.clone())
        } else if let Some(p) = &self.socket {
            Transport::Socket(p.clone())
        } else {
            Transport::Auto
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the daemon's version, its link to the merchant server and the bound wallets.
    Status,
    /// Bind a wallet: draws the QR code to scan with the wallet app and waits for the result.
    Bind(commands::BindArgs),
    /// Remove a binding (revokes its tokens with the wallet).
    Unbind(commands::UnbindArgs),
    /// Pay with the bound wallet and wait for the result.
    Pay(commands::PayArgs),
    /// List this tool's payments (history).
    Payments(commands::PaymentsArgs),
    /// Mark a succeeded payment as delivered.
    Finish(commands::FinishArgs),
    /// Refund all or part of a succeeded payment.
    Refund(commands::RefundArgs),
    /// Act as the phone of a sandbox (development): scan and approve or deny a QR code.
    #[command(subcommand)]
    Sandbox(commands::SandboxCommand),
    /// The per-app payment policy: which app may charge, caps and budgets.
    Apps(apps::AppsArgs),
    /// Profiles (who is in front of the TV, kid profiles) and the parent PIN.
    Profiles(profiles::ProfilesArgs),
    /// Every app's subscriptions on this device: list, cancel.
    Subscriptions(subscriptions::SubscriptionsArgs),
    /// Run the terminal display agent: binding and order QR codes, confirmations and the
    /// parent's PIN prompt, in this terminal (for headless boxes and SSH sessions).
    ///
    /// Registers with the daemon and prints `scanbindctl agent: registered`. Answer
    /// confirmations with y or n (a parent approval with the PIN, typed without echo);
    /// the end of input denies. With --json, one JSON object per event on stdout and the
    /// answers as lines on stdin. Ctrl-C unregisters.
    Agent,
    /// Check the bus, the daemon, the keyring, the merchant server and the clock.
    Doctor(doctor::DoctorArgs),
    /// Run the whole system on this machine and walk through bind, pay, receipt, refund.
    ///
    /// Runs the demo program, scanbind-demo (next to scanbindctl or on PATH; built
    /// first when run from the source tree with `cargo run`): it starts a private bus
    /// and keyring, the sandbox, the merchant server and scanbindd, all on this machine.
    Demo(scanbindctl::demo_args::DemoArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (scanbindctl.1 and one per command) into DIR.
    #[command(hide = true)]
    Man {
        /// The directory (created if missing).
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_logging(cli.verbose);
    let out = output::Output { json: cli.json };
    let result = match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "scanbindctl",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man { dir } => write_man_pages(&dir),
        Command::Demo(a) => demo::run(&a, cli.verbose, cli.json),
        command => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build();
            match runtime {
                Ok(rt) => rt.block_on(run(command, &cli.conn, out)),
                Err(e) => Err(anyhow::anyhow!("cannot start the async runtime: {e}")),
            }
        }
    };
    exit::report(result, out)
}

async fn run(command: Command, conn: &ConnArgs, out: output::Output) -> anyhow::Result<()> {
    let transport = conn.transport();
    match command {
        Command::Status => commands::status(&transport, out).await,
        Command::Bind(a) => commands::bind(&transport, a, out).await,
        Command::Unbind(a) => commands::unbind(&transport, a, out).await,
        Command::Pay(a) => commands::pay(&transport, a, out).await,
        Command::Payments(a) => commands::payments(&transport, a, out).await,
        Command::Finish(a) => commands::finish(&transport, a, out).await,
        Command::Refund(a) => commands::refund(&transport, a, out).await,
        Command::Sandbox(c) => commands::sandbox(c, out).await,
        Command::Profiles(a) => profiles::run(a, &transport, out).await,
        Command::Apps(a) => apps::run(a, &transport, out).await,
        Command::Subscriptions(a) => subscriptions::run(a, &transport, out).await,
        Command::Agent => agent::run(&transport, out).await,
        Command::Doctor(a) => doctor::run(&transport, a, out).await,
        Command::Completions { .. } | Command::Man { .. } | Command::Demo(_) => {
            unreachable!("handled in main")
        }
    }
}

fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    Ok(())
}
