//! The UDP endpoint of one BMC: a tokio task that reads datagrams, applies
//! the drop/latency fault switches, hands each datagram to the BMC and sends
//! the answer back. Slow answers (latency fault) are sent from their own
//! task so the socket keeps serving.

use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::instance::Bmc;

/// Serve `socket` until `shutdown` turns true.
pub async fn serve_lan(bmc: Arc<Bmc>, socket: UdpSocket, mut shutdown: watch::Receiver<bool>) {
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier sends surface here; keep serving.
                    tracing::debug!(bmc = %bmc.name, error = %e, "udp receive failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let arrived = Instant::now();
        let Some(latency) = bmc.admit_datagram() else {
            continue;
        };
        let Some(held) = bmc.answer_lan(peer, &buf[..n], arrived) else {
            continue;
        };
        let answer = held.bytes;
        // A reply fault's delay adds to the latency switch.
        let latency = match (latency, held.delay) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or_default() + b.unwrap_or_default()),
        };
        match latency {
            None => {
                let _ = socket.send_to(&answer, peer).await;
                if let Some(rec) = bmc.latency.get() {
                    rec.record(arrived.elapsed().as_nanos());
                }
            }
            Some(d) => {
                let socket = socket.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    let _ = socket.send_to(&answer, peer).await;
                });
            }
        }
    }
}
