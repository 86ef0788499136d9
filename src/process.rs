//! Process groups: stop a child and everything it started, by pid.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Send SIGKILL to the process group led by `pgid`.
pub fn kill_group(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
}

/// SIGTERM the group, wait up to `grace` for all of it to go, then SIGKILL
/// and wait until it is gone: callers (teardown, `down`) return only when
/// what they stopped no longer runs.
pub fn terminate_group(pgid: i32, grace: Duration) {
    let pid = Pid::from_raw(pgid);
    if killpg(pid, Signal::SIGTERM).is_err() {
        return;
    }
    if wait_group_gone(pgid, grace) {
        return;
    }
    let _ = killpg(pid, Signal::SIGKILL);
    // SIGKILL cannot be refused; the wait covers the kernel's reaping.
    wait_group_gone(pgid, Duration::from_secs(10));
}

/// Whether every process of group `pgid` is gone within `limit`.
fn wait_group_gone(pgid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if group_members(pgid).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The fields of /proc/PID/stat this crate reads. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its
/// last ')'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: R, S, D, Z (zombie), X (dead), ...
    pub state: char,
    /// Field 4.
    pub ppid: i32,
    /// Field 5.
    pub pgrp: i32,
    /// Field 22: clock ticks since boot.
    pub start_time: u64,
}

impl ProcStat {
    pub fn read(pid: i32) -> Option<ProcStat> {
        Self::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    pub fn parse(stat: &str) -> Option<ProcStat> {
        let (_, rest) = stat.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Some(ProcStat {
            state: fields.first()?.chars().next()?,
            ppid: fields.get(1)?.parse().ok()?,
            pgrp: fields.get(2)?.parse().ok()?,
            start_time: fields.get(19)?.parse().ok()?,
        })
    }

    /// Zombies and dead tasks count as gone.
    pub fn is_running(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

/// Live (not zombie) processes whose process group is `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    live_where(|s| s.pgrp == pgid)
}

/// Live (not zombie) direct children of `parent`.
pub fn children(parent: i32) -> Vec<i32> {
    live_where(|s| s.ppid == parent)
}

fn live_where(keep: impl Fn(&ProcStat) -> bool) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| ProcStat::read(*pid).is_some_and(|s| s.is_running() && keep(&s)))
        .collect()
}

/// SIGKILL this process's direct children and wait (up to 10 s) until none
/// runs. A forced exit uses it so that a command the graceful teardown had
/// in flight (an `ip link del`, say) does not outlive the run as an orphan.
pub fn kill_own_children() {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live = children(me);
        if live.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in live {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process with this pid exists (zombies count as gone).
pub fn is_alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    // Gone between kill and read: not alive; unreadable stat: trust kill.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => ProcStat::parse(&stat).is_none_or(|s| s.is_running()),
        Err(_) => false,
    }
}

/// SIGTERM one process (not its group: a harness run tears its own children
/// down), wait up to `grace` for it to exit, then SIGKILL it.
pub fn terminate(pid: i32, grace: Duration) {
    let p = Pid::from_raw(pid);
    if kill(p, Signal::SIGTERM).is_err() {
        return;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = kill(p, Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_counts_fields_after_the_last_parenthesis() {
        let line = "4242 (a (b) c) S 1 4240 4240 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        let s = ProcStat::parse(line).unwrap();
        assert_eq!(
            s,
            ProcStat {
                state: 'S',
                ppid: 1,
                pgrp: 4240,
                start_time: 987654
            }
        );
        assert!(s.is_running());
        assert!(
            !ProcStat::parse(&line.replace(") S ", ") Z "))
                .unwrap()
                .is_running()
        );
        assert_eq!(ProcStat::parse("4242 (x"), None);
    }
}
