//! `scanbind-load`: simulates N devices (each with its own key and binding) paying
//! against `scanbind-server` replicas and an embedded sandbox for a fixed time, on
//! loopback only; prints one JSON report (throughput, p50/p99 latency, errors, lost
//! notifications, double charges).
//!
//! ```sh
//! scanbind-load --devices 1000 --seconds 60                      # SQLite, one server
//! scanbind-load --devices 1000 --seconds 60 --postgres --replicas 2   # needs PG_BIN_DIR
//! # faults under load: kill a replica at 20 s, kill and restart PostgreSQL at 40 s,
//! # drop then delay 200 notifications each
//! scanbind-load --devices 1000 --seconds 60 --postgres --replicas 2 \
//!     --kill-replica-at 20 --restart-postgres-at 40 --notification-faults 200
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use scanbind_reliability::load::{self, FaultPlan, LoadPlan};
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
    /// Kill (SIGKILL) the last replica this many seconds into the window (needs
    /// `--replicas` 2 or more); its devices move to the others.
    #[arg(long, value_name = "SECONDS")]
    kill_replica_at: Option<u64>,
    /// Kill PostgreSQL and start it again this many seconds into the window (needs
    /// `--postgres`).
    #[arg(long, value_name = "SECONDS")]
    restart_postgres_at: Option<u64>,
    /// Drop this many sandbox notifications, then delay as many, from the start of the
    /// window.
    #[arg(long, default_value_t = 0, value_name = "N")]
    notification_faults: u32,
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
    anyhow::ensure!(
        args.kill_replica_at.is_none() || args.replicas >= 2,
        "--kill-replica-at needs --replicas 2 or more"
    );
    anyhow::ensure!(
        args.restart_postgres_at.is_none() || args.postgres,
        "--restart-postgres-at needs --postgres"
    );
    let mut servers: Vec<_> = (0..args.replicas)
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
        &mut servers,
        &LoadPlan {
            devices: args.devices,
            duration: Duration::from_secs(args.seconds),
            drain: Duration::from_secs(args.drain),
            faults: FaultPlan {
                kill_replica_at: args.kill_replica_at.map(Duration::from_secs),
                restart_postgres_at: args.restart_postgres_at.map(Duration::from_secs),
                notifications: args.notification_faults,
            },
        },
        if args.postgres { "postgres" } else { "sqlite" },
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
