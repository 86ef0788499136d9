//! The run's tracing log: everything the harness logs goes to stderr
//! (filtered by RUST_LOG, default `warn`) and, while a run is active, to
//! `RUN_DIR/maas-e2e.log` (RUST_LOG, default `info`).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static RUN_LOG: OnceLock<Arc<Mutex<Option<File>>>> = OnceLock::new();

fn slot() -> &'static Arc<Mutex<Option<File>>> {
    RUN_LOG.get_or_init(|| Arc::new(Mutex::new(None)))
}

/// Writes to the active run's log file, or nowhere.
#[derive(Clone, Copy)]
pub struct RunLogWriter;

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match slot().lock().unwrap().as_mut() {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match slot().lock().unwrap().as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl<'a> MakeWriter<'a> for RunLogWriter {
    type Writer = RunLogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Install the subscriber once per process.
pub fn init() {
    let stderr_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let file_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(io::stderr)
                .with_filter(stderr_filter),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(RunLogWriter)
                .with_filter(file_filter),
        )
        .try_init();
}

/// Send the log to `RUN_DIR/maas-e2e.log` until `end_run`.
pub fn begin_run(run_dir: &Path) {
    if let Ok(f) = File::create(run_dir.join("maas-e2e.log")) {
        *slot().lock().unwrap() = Some(f);
    }
}

pub fn end_run() {
    *slot().lock().unwrap() = None;
}
