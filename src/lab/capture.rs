//! Opt-in packet capture of a lab segment: tcpdump inside the lab namespace
//! on the lab veth. The file name says SECRET because the capture holds
//! what crossed the wire in clear (the enlist POST carries the BMC
//! password); CI leaves `*.SECRET.*` out of published artifacts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::cmd::Cmd;

/// The capture file of a run: `RUN_DIR/network/capture.SECRET.pcap`.
pub fn capture_path(run_dir: &Path) -> PathBuf {
    run_dir.join("network").join("capture.SECRET.pcap")
}

#[derive(Debug, Error)]
pub enum CaptureError {
    #[error("packet capture on {interface} in netns {netns} could not start: {source}")]
    Start {
        netns: String,
        interface: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tcpdump on {interface} in netns {netns} exited at once: {stderr}")]
    Exited {
        netns: String,
        interface: String,
        stderr: String,
    },
}

/// A running tcpdump; `stop` (or drop) ends it and flushes the file.
pub struct Capture {
    pub path: PathBuf,
    child: Option<tokio::process::Child>,
}

impl Capture {
    /// Start capturing on `interface` inside `netns` into `path`.
    pub async fn start(netns: &str, interface: &str, path: &Path) -> Result<Capture, CaptureError> {
        let start_err = |source| CaptureError::Start {
            netns: netns.into(),
            interface: interface.into(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(start_err)?;
        }
        // --immediate-mode -U: hand over and write each packet at once (else
        // packets wait in the kernel ring for up to a second and a stop
        // loses them), so a killed run still leaves a readable file. -s 0: whole packets. -Z root: tcpdump otherwise
        // drops privileges and may not write into the run directory.
        let cmd = Cmd::new("tcpdump")
            .args([
                "-i",
                interface,
                "--immediate-mode",
                "-U",
                "-s",
                "0",
                "-n",
                "-Z",
                "root",
                "-w",
            ])
            .arg(path.display().to_string())
            .in_netns(netns);
        let mut tcmd = cmd.to_tokio();
        tcmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = tcmd.spawn().map_err(start_err)?;
        // tcpdump creates the file once it listens; an exit before that is
        // a bad interface or a missing capability.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !path.exists() && tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                let out = child.wait_with_output().await.map_err(start_err)?;
                return Err(CaptureError::Exited {
                    netns: netns.into(),
                    interface: interface.into(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Capture {
            path: path.to_path_buf(),
            child: Some(child),
        })
    }

    /// SIGTERM the tcpdump group (it flushes), wait for it.
    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let pid = pid as i32;
                tokio::task::spawn_blocking(move || {
                    crate::process::terminate_group(pid, Duration::from_secs(3))
                })
                .await
                .ok();
            }
            let _ = child.wait().await;
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(child) = &self.child
            && let Some(pid) = child.id()
        {
            crate::process::kill_group(pid as i32);
        }
    }
}
