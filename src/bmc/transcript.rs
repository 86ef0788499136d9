//! The transcript: one JSON line per request/response and per session
//! event, decoded (netfn, command, completion code, session, user, channel).
//! Request data is kept as hex except for commands that carry secrets
//! (passwords, challenges, LAN parameters such as the community string),
//! which are replaced by "<redacted>". Keys and authcodes are never logged.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use crate::bmc::cmd::Command;
use crate::bmc::fault::Medium;

/// One line of the transcript.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry<'a> {
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u128,
    pub bmc: &'a str,
    pub channel: Medium,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    pub event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netfn: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cc: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl<'a> Entry<'a> {
    pub fn new(bmc: &'a str, channel: Medium, event: &'a str) -> Self {
        Entry {
            ts_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            bmc,
            channel,
            peer: None,
            event,
            netfn: None,
            cmd: None,
            name: None,
            cc: None,
            session_id: None,
            user: None,
            request: None,
            response: None,
            detail: None,
        }
    }

    /// Fill in a command exchange, redacting secret-bearing data.
    pub fn command(mut self, netfn: u8, cmd: u8, req: &[u8], cc: u8, resp: &[u8]) -> Self {
        let c = Command::from_wire(netfn, cmd);
        self.netfn = Some(netfn);
        self.cmd = Some(cmd);
        self.name = Some(format!("{c:?}"));
        self.cc = Some(cc);
        self.request = Some(if c.secret_request() {
            "<redacted>".into()
        } else {
            hex::encode(req)
        });
        self.response = Some(if c.secret_response() {
            "<redacted>".into()
        } else {
            hex::encode(resp)
        });
        self
    }
}

/// Where transcript lines go; shared by every BMC of a fleet.
pub struct Transcript {
    out: Mutex<std::io::BufWriter<std::fs::File>>,
}

impl Transcript {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Transcript {
            out: Mutex::new(std::io::BufWriter::new(f)),
        })
    }

    pub fn write(&self, e: &Entry<'_>) {
        let mut line = serde_json::to_vec(e).expect("entries serialize");
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // A transcript that cannot be written must not stop the BMC.
        let _ = out.write_all(&line).and_then(|_| out.flush());
    }
}
