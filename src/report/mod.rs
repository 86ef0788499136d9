//! Reports: the result model, redaction, snapshots, JUnit, the summary
//! table and the progress display, all fed by one event stream.

pub mod checks;
pub mod events;
pub mod fleet;
pub mod junit;
pub mod log;
pub mod progress;
pub mod redact;
pub mod result;
pub mod snapshot;
pub mod summary;
