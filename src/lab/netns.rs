//! Network namespaces: create sockets inside the lab while the process stays
//! in the host's namespace.
//!
//! A socket keeps the namespace it was created in, so a short-lived thread
//! enters the lab's namespace (setns), binds, and hands the socket back.
//! Children that belong in the lab run through `ip netns exec`.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;

use nix::sched::{CloneFlags, setns};

/// Where iproute2 keeps named namespaces.
pub fn netns_path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

/// Run `f` on a fresh thread that has entered namespace `name`
/// (`None`: the host's namespace, no thread needed).
pub fn run_in<T, F>(name: Option<&str>, f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send,
    T: Send,
{
    let Some(name) = name else { return f() };
    let path = netns_path(name);
    let ns = File::open(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("open network namespace {}: {e}", path.display()),
        )
    })?;
    std::thread::scope(|s| {
        s.spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET)
                .map_err(|e| io::Error::other(format!("setns into {}: {e}", path.display())))?;
            f()
        })
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
    })
}

/// A non-blocking UDP socket bound to `addr` inside namespace `netns`.
pub fn bind_udp(netns: Option<&str>, addr: SocketAddr) -> io::Result<UdpSocket> {
    run_in(netns, || {
        let s = UdpSocket::bind(addr)?;
        s.set_nonblocking(true)?;
        Ok(s)
    })
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("bind udp {addr} in {}: {e}", ns_label(netns)),
        )
    })
}

/// A non-blocking TCP listener bound to `addr` inside namespace `netns`.
pub fn bind_tcp(netns: Option<&str>, addr: SocketAddr) -> io::Result<TcpListener> {
    run_in(netns, || {
        let s = TcpListener::bind(addr)?;
        s.set_nonblocking(true)?;
        Ok(s)
    })
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("bind tcp {addr} in {}: {e}", ns_label(netns)),
        )
    })
}

fn ns_label(netns: Option<&str>) -> String {
    netns.map_or_else(
        || "the host namespace".to_string(),
        |n| format!("netns {n}"),
    )
}
