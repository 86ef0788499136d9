//! Typed shelling out: a command is an argv, never a formatted shell string.
//!
//! Every failure carries the argv and the captured output, and prints as a
//! command a person can paste, with secrets replaced by `<redacted>`.
//! Children start in their own process group, so stopping one stops what it
//! started too (`ipmipower`, `qemu`, `postgres` all fork).

use std::ffi::OsString;
use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use thiserror::Error;

/// A command to run on the host or inside a lab network namespace.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// Run through `ip netns exec NAME`, for children that belong in the lab.
    netns: Option<String>,
    /// Run as this user through `runuser -u USER --` (postgres refuses root).
    user: Option<String>,
    /// Values never printed: passwords given on the command line.
    secrets: Vec<String>,
    timeout: Option<Duration>,
    stdin: Option<Vec<u8>>,
}

/// A command that could not be started, failed, or ran out of time.
#[derive(Debug, Error)]
pub enum CmdError {
    #[error(
        "could not start `{command}`: {source}; is {program} installed? (see `maas-e2e doctor`)"
    )]
    Spawn {
        command: String,
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` exited with {status}\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}")]
    Failed {
        command: String,
        status: ExitStatus,
        stdout: String,
        stderr: String,
    },
    #[error("`{command}` did not finish within {timeout:?}; it was killed")]
    Timeout { command: String, timeout: Duration },
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Cmd {
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            netns: None,
            user: None,
            secrets: Vec::new(),
            timeout: None,
            stdin: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An argument that must never appear in logs or error messages.
    pub fn secret_arg(mut self, arg: impl Into<String>) -> Self {
        let arg = arg.into();
        if !arg.is_empty() {
            self.secrets.push(arg.clone());
        }
        self.args.push(arg);
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    pub fn in_netns(mut self, netns: impl Into<String>) -> Self {
        self.netns = Some(netns.into());
        self
    }

    pub fn as_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// What the command gets on stdin, if anything (for dry-run printing).
    pub fn stdin_data(&self) -> Option<&[u8]> {
        self.stdin.as_deref()
    }

    /// The full argv, with the netns and user wrappers applied.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = Vec::new();
        if let Some(ns) = &self.netns {
            argv.extend(["ip".into(), "netns".into(), "exec".into(), ns.clone()]);
        }
        if let Some(user) = &self.user {
            argv.extend(["runuser".into(), "-u".into(), user.clone(), "--".into()]);
        }
        argv.push(self.program.clone());
        argv.extend(self.args.iter().cloned());
        argv
    }

    /// The command as a person would paste it, secrets redacted.
    pub fn display(&self) -> String {
        let env = self
            .envs
            .iter()
            .map(|(k, v)| format!("{k}={} ", shell_quote(&self.redact(v))));
        let argv = self
            .argv()
            .into_iter()
            .map(|a| shell_quote(&self.redact(&a)));
        env.chain(argv)
            .collect::<Vec<_>>()
            .join(" ")
            .replace("  ", " ")
    }

    /// Replace every secret this command carries inside `text`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "<redacted>");
        }
        out
    }

    /// A tokio command ready to spawn: own process group, killed on drop.
    pub fn to_tokio(&self) -> tokio::process::Command {
        let argv = self.argv();
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(argv[1..].iter().map(OsString::from));
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.process_group(0).kill_on_drop(true);
        cmd
    }

    /// Run to completion; any exit status is returned, not judged.
    pub async fn output(&self) -> Result<CmdOutput, CmdError> {
        let mut cmd = self.to_tokio();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        tracing::debug!(command = %self.display(), "run");
        let mut child = cmd.spawn().map_err(|source| CmdError::Spawn {
            command: self.display(),
            program: self.argv()[0].clone(),
            source,
        })?;
        let pid = child.id();
        if let Some(data) = &self.stdin {
            use tokio::io::AsyncWriteExt;
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(data).await;
            }
        }
        let wait = child.wait_with_output();
        let out = match self.timeout {
            Some(t) => match tokio::time::timeout(t, wait).await {
                Ok(r) => r,
                Err(_) => {
                    if let Some(pid) = pid {
                        crate::process::kill_group(pid as i32);
                    }
                    return Err(CmdError::Timeout {
                        command: self.display(),
                        timeout: t,
                    });
                }
            },
            None => wait.await,
        }
        .map_err(|source| CmdError::Spawn {
            command: self.display(),
            program: self.argv()[0].clone(),
            source,
        })?;
        Ok(CmdOutput {
            status: out.status,
            stdout: self.redact(&String::from_utf8_lossy(&out.stdout)),
            stderr: self.redact(&String::from_utf8_lossy(&out.stderr)),
        })
    }

    /// Run to completion and fail unless it exits 0; returns stdout.
    pub async fn run(&self) -> Result<String, CmdError> {
        let out = self.output().await?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(CmdError::Failed {
                command: self.display(),
                status: out.status,
                stdout: out.stdout,
                stderr: out.stderr,
            })
        }
    }

    /// Blocking variant for synchronous callers (teardown in a panic hook, doctor).
    pub fn run_blocking(&self) -> Result<String, CmdError> {
        let argv = self.argv();
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        use std::os::unix::process::CommandExt;
        cmd.process_group(0).stdin(Stdio::null());
        let out = cmd.output().map_err(|source| CmdError::Spawn {
            command: self.display(),
            program: argv[0].clone(),
            source,
        })?;
        let stdout = self.redact(&String::from_utf8_lossy(&out.stdout));
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(CmdError::Failed {
                command: self.display(),
                status: out.status,
                stdout,
                stderr: self.redact(&String::from_utf8_lossy(&out.stderr)),
            })
        }
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+<>".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_redacts_secrets_and_quotes() {
        let c = Cmd::new("ipmipower")
            .args(["-h", "10.0.0.1", "-u", "maas", "-p"])
            .secret_arg("s3cr3t pw")
            .in_netns("me2e-abc");
        let shown = c.display();
        assert_eq!(
            shown,
            "ip netns exec me2e-abc ipmipower -h 10.0.0.1 -u maas -p <redacted>"
        );
        assert!(!shown.contains("s3cr3t"));
    }

    #[tokio::test]
    async fn failure_carries_argv_and_output() {
        let err = Cmd::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .run()
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exited with"), "{text}");
        assert!(text.contains("err") && text.contains("out"), "{text}");
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        // The backgrounded child writes its pid, then sleeps; after the
        // timeout it must be gone too, not only the shell.
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("bg.pid");
        let script = format!("sleep 30 & echo $! > {}; sleep 30", pidfile.display());
        let err = Cmd::new("sh")
            .args(["-c", &script])
            .timeout(Duration::from_millis(300))
            .run()
            .await
            .unwrap_err();
        assert!(matches!(err, CmdError::Timeout { .. }));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = |pid: i32| {
            // A zombie no one reaps yet counts as gone: it runs nothing.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !gone(pid) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            gone(pid),
            "the backgrounded sleep {pid} outlived the timeout"
        );
    }
}
