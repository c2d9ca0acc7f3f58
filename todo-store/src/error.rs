//! The store's error.

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A convenient alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a store operation failed. Backend-neutral: sqlx errors never cross the trait.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such row for this owner.
    #[error("not found")]
    NotFound,
    /// A concurrent change won (stale version) or the id exists.
    #[error("conflict: the row changed concurrently or already exists")]
    Conflict,
    /// A cursor this store did not issue.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The database is unreachable or the pool timed out: a dependency outage, not the request's fault.
    #[error("database unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored row could not be read as a domain value.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Any other backend failure.
    #[error("{backend} error")]
    Backend {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The cause.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Whether this is an outage of the database rather than a problem of the request.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    pub(crate) fn from_sqlx(backend: &'static str, e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match e {
            E::RowNotFound => Error::NotFound,
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                Error::Unavailable(Box::new(e))
            }
            E::Database(ref db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                if db.is_unique_violation() {
                    Error::Conflict
                } else if code.starts_with("08")
                    || code == "57P01"
                    || code == "57P02"
                    || code == "57P03"
                {
                    // connection exceptions, administrator shutdown, crash shutdown, cannot connect now
                    Error::Unavailable(Box::new(e))
                } else if backend == "sqlite" && (code == "5" || code == "6" || code == "517") {
                    // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout
                    Error::Unavailable(Box::new(e))
                } else {
                    Error::Backend {
                        backend,
                        source: Box::new(e),
                    }
                }
            }
            other => Error::Backend {
                backend,
                source: Box::new(other),
            },
        }
    }
}
