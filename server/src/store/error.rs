//! The store's error type.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL is neither SQLite nor PostgreSQL.
    #[error("configuration key database.url: must start with sqlite:// or postgres://")]
    Url,
    /// Syncing the SQLite WAL failed.
    #[error("syncing the SQLite WAL {path}: {source}")]
    Sync {
        /// The WAL file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A status or stage column holds a text this server does not know.
    #[error("database: unknown value {value:?} in column {column}")]
    Unknown {
        /// The column.
        column: &'static str,
        /// The text found.
        value: String,
    },
    /// A row the statement just wrote or referenced is not there.
    #[error("database: {0}")]
    Missing(&'static str),
}

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
