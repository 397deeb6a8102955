//! `scanbind-load`: simulates N devices (each with its own key and binding) paying
//! against `scanbind-server` replicas and an embedded sandbox for a fixed time, on
//! loopback only; prints one JSON report (throughput, p50/p99 latency, errors, lost
//! notifications, double charges).
//!
//! ```sh
//! scanbind-load --devices 1000 --seconds 60                      # SQLite, one server
//! scanbind-load --devices 1000 --seconds 60 --postgres --replicas 2   # needs PG_BIN_DIR
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use scanbind_reliability::load::{self, LoadPlan};
use scanbind_reliability::world::{self, World};
use scanbind_testkit::world::ServerBinary;

/// Load generator for scanbind-server (loopback only).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Simulated devices (1..=5000).
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Measured seconds (at most 600).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Run the server on a throwaway PostgreSQL (PG_BIN_DIR) instead of SQLite.
    #[arg(long)]
    postgres: bool,
    /// Server replicas sharing the database (PostgreSQL only for more than one).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// The scanbind-server binary (default: next to this one).
    #[arg(long, value_name = "FILE")]
    server_bin: Option<PathBuf>,
    /// Seconds to wait after the end for the last notifications.
    #[arg(long, default_value_t = 30)]
    drain: u64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.replicas >= 1 && args.replicas <= 8,
        "replicas must be 1..=8"
    );
    anyhow::ensure!(
        args.replicas == 1 || args.postgres,
        "several replicas need --postgres"
    );
    let server_bin = match args.server_bin {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("no parent directory")?
            .join("scanbind-server"),
    };
    anyhow::ensure!(
        server_bin.exists(),
        "no {} (build it: cargo build -p scanbind-server)",
        server_bin.display()
    );
    let world = World::new(
        world::options()
            .database(world::database(args.postgres))
            .server_binary(ServerBinary::Path(server_bin))
            .time_scale(0.001),
    )
    .await;
    let servers: Vec<_> = (0..args.replicas)
        .map(|_| {
            if args.postgres {
                world.spawn_server_logged(
                    &[("SCANBIND_SERVER_DATABASE_MAX_CONNECTIONS", "20")],
                    "warn",
                )
            } else {
                world.spawn_server_logged(&[], "warn")
            }
        })
        .collect();
    let report = load::run(
        &world,
        &servers,
        &LoadPlan {
            devices: args.devices,
            duration: Duration::from_secs(args.seconds),
            drain: Duration::from_secs(args.drain),
        },
        if args.postgres { "postgres" } else { "sqlite" },
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
