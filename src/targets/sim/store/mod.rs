//! The sim region's state in Postgres: every read and write the API, the
//! metadata service, the power driver and the rack make goes through here.
//!
//! One `Store`, its methods split by concern: tokens, machines (and their
//! power settings), events, commissioning, config, network objects
//! (fabrics, VLANs, subnets, IP ranges) and rack controllers. Every
//! statement runs through `sql` (one error mapping, one row mapper).
//! Rows are turned into the shared MAAS types (`crate::maas::types`), so the
//! JSON the sim serves is the JSON the client parses.

mod commissioning;
mod config;
mod events;
mod machines;
mod network;
mod racks;
mod scripts;
mod sql;
mod tokens;

use thiserror::Error;
use tokio::sync::Mutex;
use tokio_postgres::Row;

pub use commissioning::{
    COMMISSIONING_SCRIPTS, Phase, ReportedHardware, ReportedInterface, TESTING_SCRIPTS,
};
pub use events::LEVELS;
pub use machines::{
    EnlistForm, KNOWN_POWER_TYPES, MachineBootState, PowerSettings, new_system_id, normalise_mac,
};
pub use scripts::{
    SCRIPT_TYPE_COMMISSIONING, SCRIPT_TYPE_TESTING, UserScript, check_script_name, script_type_of,
};

use sql::Args;

/// Where the API's resource_uri values start.
const API: &str = "/MAAS/api/2.0";

/// A store operation that failed; the API maps each kind to an HTTP status.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{what}: {source}")]
    Sql {
        what: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// 400 with MAAS's field-error body `{"field": ["message"]}`.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409 (a node state violation in MAAS terms).
    #[error("{0}")]
    Conflict(String),
}

type Result<T> = std::result::Result<T, StoreError>;

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn no_machine(system_id: &str) -> StoreError {
    StoreError::NotFound(format!("No machine matches the given query ({system_id})."))
}

/// SQL that renders a timestamp column as MAAS does ("Wed, 25 Nov. 2026 12:00:00").
fn maas_time(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', 'Dy, DD Mon. YYYY HH24:MI:SS')")
}

/// The Postgres-backed state.
pub struct Store {
    db: Mutex<tokio_postgres::Client>,
    /// Counts the changes a waiter waits for (a machine enlisted, a status
    /// changed), so clients in this process wake at once instead of at
    /// their next poll (`MaasClient::with_change_signal`).
    changes: tokio::sync::watch::Sender<u64>,
}

impl Store {
    pub fn new(client: tokio_postgres::Client) -> Self {
        Store {
            db: Mutex::new(client),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    /// A receiver that sees every later machine or status change.
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Tell the waiters a machine appeared or changed status (after the
    /// change and its event are stored, so their next look sees both).
    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    // One statement on the shared client (see `sql` for the semantics).

    async fn opt<T>(
        &self,
        what: &str,
        query: &str,
        args: Args<'_>,
        map: impl FnOnce(&Row) -> T,
    ) -> Result<Option<T>> {
        sql::opt(&*self.db.lock().await, what, query, args, map).await
    }

    async fn one<T>(
        &self,
        what: &str,
        query: &str,
        args: Args<'_>,
        map: impl FnOnce(&Row) -> T,
    ) -> Result<T> {
        sql::one(&*self.db.lock().await, what, query, args, map).await
    }

    async fn rows<T>(
        &self,
        what: &str,
        query: &str,
        args: Args<'_>,
        map: impl FnMut(&Row) -> T,
    ) -> Result<Vec<T>> {
        sql::rows(&*self.db.lock().await, what, query, args, map).await
    }

    async fn exec(&self, what: &str, query: &str, args: Args<'_>) -> Result<u64> {
        sql::exec(&*self.db.lock().await, what, query, args).await
    }
}
