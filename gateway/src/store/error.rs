//! Store errors: database failures classified once, into types the API maps to statuses in one place.

use crate::model::{InvalidField, Kind};

/// The row (or, on SQLite, the database) is locked by another writer and this request does not wait.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind} {id} is currently being modified by another request")]
pub struct LockConflict {
    pub kind: Kind,
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    LockConflict(#[from] LockConflict),
    #[error("{kind} not found: {id}")]
    NotFound { kind: Kind, id: String },
    #[error("{kind} already exists with that {field}")]
    Duplicate { kind: Kind, field: &'static str },
    #[error("{0}")]
    Invalid(#[from] InvalidField),
    /// A create names an entity that is not there (a tool's gateway, a server's tool).
    #[error("{field}: refers to an id that does not exist")]
    MissingReference { field: &'static str },
    /// The database cannot be reached, or no pool connection came free in time.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("database statement timed out")]
    StatementTimeout,
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A gateway's upstream could not be initialized and listed.
    #[error("Failed to initialize gateway at {url}: {source}")]
    Upstream {
        url: String,
        source: crate::upstream::UpstreamError,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a raw database error means for an operation on `kind` `id`.
pub fn classify(err: sqlx::Error, kind: Kind, id: &str) -> StoreError {
    let code = match &err {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => return StoreError::Unavailable(err),
        _ => None,
    };
    let Some(code) = code else {
        return StoreError::Database(err);
    };
    // SQLite's codes are numbers; PostgreSQL's SQLSTATEs can look like one ("22021"), so the number
    // is read only from SQLite.
    let sqlite =
        matches!(&err, sqlx::Error::Database(db) if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some());
    match code.as_str() {
        // lock_not_available (NOWAIT on a locked row, or lock_timeout expired), deadlock, serialization.
        "55P03" | "40P01" | "40001" => LockConflict {
            kind,
            id: id.to_owned(),
        }
        .into(),
        "57014" => StoreError::StatementTimeout,
        "23505" => StoreError::Duplicate {
            kind,
            field: unique_field(kind),
        },
        "23503" => missing_reference(kind),
        // Connection exceptions, admin shutdown, cannot connect now, database not accepting connections.
        c if c.starts_with("08") || c.starts_with("57P") || c == "55000" || c == "3D000" => {
            StoreError::Unavailable(err)
        }
        c => match c.parse::<u32>().ok().filter(|_| sqlite) {
            // SQLite: the primary result code is the low byte of the extended one.
            Some(n) if n & 0xff == 5 || n & 0xff == 6 => LockConflict {
                kind,
                id: id.to_owned(),
            }
            .into(),
            Some(2067 | 1555) => StoreError::Duplicate {
                kind,
                field: unique_field(kind),
            },
            Some(787) => missing_reference(kind),
            // SQLITE_CANTOPEN, SQLITE_IOERR, SQLITE_FULL: the store is not there to use.
            Some(n) if matches!(n & 0xff, 10 | 13 | 14) => StoreError::Unavailable(err),
            _ => StoreError::Database(err),
        },
    }
}

fn unique_field(kind: Kind) -> &'static str {
    match kind {
        Kind::Resource => "uri",
        _ => "name",
    }
}

/// A foreign key that points nowhere: the gateway of a tool, prompt or resource, or a server's tool.
fn missing_reference(kind: Kind) -> StoreError {
    StoreError::MissingReference {
        field: if kind == Kind::Server {
            "associated_tools"
        } else {
            "gateway_id"
        },
    }
}
