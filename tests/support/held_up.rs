//! `maas-e2e up` of a sim held in the background, for the tests that run
//! target external against it: started, waited for until its connection
//! file appears, and interrupted (Ctrl-C) on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct HeldUp {
    pub child: Child,
    /// Its stdout and stderr.
    pub log: PathBuf,
    /// The 0600 KEY=VALUE file `up` writes once the MAAS is up.
    pub conn: PathBuf,
}

impl HeldUp {
    /// `up --target sim --seed SEED --out OUT SCENARIO` with `bin`, then wait
    /// (at most 300 s) for its connection file. Panics with up's log when it
    /// exits first.
    pub fn start(mut bin: Command, out: &Path, scenario: &Path, seed: u64) -> HeldUp {
        let log = out.join("up.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = bin
            .args([
                "up",
                "--target",
                "sim",
                "--seed",
                &seed.to_string(),
                "--out",
            ])
            .arg(out)
            .arg(scenario)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut up = HeldUp {
            child,
            log,
            conn: PathBuf::new(),
        };
        // The run directory names the run; the connection file appears once the MAAS is up.
        let deadline = Instant::now() + Duration::from_secs(300);
        up.conn = loop {
            let found = std::fs::read_dir(out)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| {
                    Path::new(maas_e2e::run::state::REGISTRY_DIR)
                        .join(format!("{}.maas.env", e.file_name().to_string_lossy()))
                })
                .find(|p| p.exists());
            if let Some(p) = found {
                break p;
            }
            if let Ok(Some(status)) = up.child.try_wait() {
                panic!("up exited with {status}:\n{}", up.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "no connection file after 300 s:\n{}",
                up.log_text()
            );
            std::thread::sleep(Duration::from_millis(500));
        };
        up
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The connection file's KEY=VALUE lines.
    pub fn vars(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.conn)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    /// SIGINT, then wait (at most 120 s) for `up` to tear down; its exit code.
    pub fn interrupt(&mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for HeldUp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.interrupt();
        }
    }
}
