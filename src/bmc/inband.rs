//! The in-band endpoint: OpenIPMI's "VM" serial protocol on a unix socket,
//! which QEMU's `ipmi-bmc-extern` device connects to (QEMU is the client and
//! reconnects; we listen). The guest sees a KCS BMC (`isa-ipmi-kcs`) as
//! /dev/ipmi0, and its requests reach the same [`Bmc`] state as the LAN.
//!
//! Framing (OpenIPMI lanserv/serial_ipmi.c, QEMU hw/ipmi/ipmi_bmc_extern.c):
//! 0xA0 ends a message, 0xA1 ends a control command, 0xAA escapes the next
//! byte (sent with bit 4 set). A message is `seq, netfn<<2|lun, cmd, data,
//! checksum` where the checksum makes the whole frame sum to zero.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};

use super::codec::lan_msg::checksum;
use super::instance::Bmc;
use super::power::{PowerBackend, PowerError, PowerOp};

const MSG_END: u8 = 0xA0;
const CMD_END: u8 = 0xA1;
const ESCAPE: u8 = 0xAA;
/// Frames longer than this are dropped (QEMU's own limit is far smaller).
const MAX_FRAME: usize = 1024;

/// Control commands (OpenIPMI README.vm).
pub mod control {
    pub const VERSION: u8 = 0xFF;
    pub const CAPABILITIES: u8 = 0x08;
    /// BMC -> QEMU: hard reset. QEMU -> BMC it would mean "the VM was
    /// reset", but QEMU never sends it (see `connection`).
    pub const RESET: u8 = 0x04;
    pub const POWER_OFF: u8 = 0x03;
    pub const GRACEFUL_SHUTDOWN: u8 = 0x09;
    pub const SEND_NMI: u8 = 0x07;
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An IPMI request: QEMU's sequence number, netfn, LUN, cmd, data.
    Request {
        seq: u8,
        netfn: u8,
        lun: u8,
        cmd: u8,
        data: Vec<u8>,
    },
    /// A control command and its arguments.
    Control(Vec<u8>),
}

/// Incremental frame decoder; bad frames are dropped, never fatal.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    escaped: bool,
    overflow: bool,
}

impl Decoder {
    /// Feed bytes; complete frames come out in order.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Frame>) {
        for &b in bytes {
            match b {
                MSG_END | CMD_END => {
                    let frame = std::mem::take(&mut self.buf);
                    let bad = self.escaped || self.overflow;
                    self.escaped = false;
                    self.overflow = false;
                    if bad || frame.is_empty() {
                        continue;
                    }
                    if b == CMD_END {
                        out.push(Frame::Control(frame));
                    } else if frame.len() >= 4
                        && checksum(&frame[..frame.len() - 1]) == frame[frame.len() - 1]
                    {
                        out.push(Frame::Request {
                            seq: frame[0],
                            netfn: frame[1] >> 2,
                            lun: frame[1] & 3,
                            cmd: frame[2],
                            data: frame[3..frame.len() - 1].to_vec(),
                        });
                    }
                }
                ESCAPE => self.escaped = true,
                _ => {
                    let b = if std::mem::take(&mut self.escaped) {
                        b & !0x10
                    } else {
                        b
                    };
                    if self.buf.len() >= MAX_FRAME {
                        self.overflow = true;
                    } else {
                        self.buf.push(b);
                    }
                }
            }
        }
    }
}

fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if matches!(b, MSG_END | CMD_END | ESCAPE) {
            out.extend_from_slice(&[ESCAPE, b | 0x10]);
        } else {
            out.push(b);
        }
    }
}

/// A response frame: `seq, (netfn|1)<<2|lun, cmd, cc, data, checksum, 0xA0`.
pub fn encode_response(seq: u8, netfn: u8, lun: u8, cmd: u8, cc: u8, data: &[u8]) -> Vec<u8> {
    let mut raw = vec![seq, (netfn | 1) << 2 | (lun & 3), cmd, cc];
    raw.extend_from_slice(data);
    raw.push(checksum(&raw));
    let mut out = Vec::with_capacity(raw.len() + 4);
    escape_into(&mut out, &raw);
    out.push(MSG_END);
    out
}

/// A request frame (for test clients standing in for QEMU).
pub fn encode_request(seq: u8, netfn: u8, lun: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
    let mut raw = vec![seq, netfn << 2 | (lun & 3), cmd];
    raw.extend_from_slice(data);
    raw.push(checksum(&raw));
    let mut out = Vec::new();
    escape_into(&mut out, &raw);
    out.push(MSG_END);
    out
}

/// A control frame.
pub fn encode_control(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    escape_into(&mut out, bytes);
    out.push(CMD_END);
    out
}

/// A decoded response (for test clients).
pub fn decode_response(frame: &[u8]) -> Option<(u8, u8, u8, u8, Vec<u8>)> {
    if frame.len() < 5 || checksum(&frame[..frame.len() - 1]) != frame[frame.len() - 1] {
        return None;
    }
    Some((
        frame[0],
        frame[1] >> 2,
        frame[2],
        frame[3],
        frame[4..frame.len() - 1].to_vec(),
    ))
}

#[derive(Debug, Default)]
struct LinkState {
    tx: Option<mpsc::UnboundedSender<Vec<u8>>>,
    caps: u8,
    connections: u64,
}

/// The connection to QEMU as seen by the rest of the BMC: whether a VM is
/// attached, what it can do, and a power backend that sends VM control ops.
#[derive(Debug, Default)]
pub struct VmLink {
    state: Mutex<LinkState>,
}

impl VmLink {
    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn connected(&self) -> bool {
        self.lock().tx.is_some()
    }

    /// Connections accepted so far (QEMU reconnects after a VM restart).
    pub fn connections(&self) -> u64 {
        self.lock().connections
    }

    /// Capability bits QEMU advertised (bit0 power off, bit1 reset, bit5 graceful).
    pub fn capabilities(&self) -> u8 {
        self.lock().caps
    }

    fn send_op(&self, op: PowerOp, code: u8, cap_bit: u8) -> Result<(), PowerError> {
        let st = self.lock();
        let Some(tx) = &st.tx else {
            return Err(PowerError::Unsupported {
                backend: "vm link",
                op,
                why: "no VM is connected",
            });
        };
        if st.caps & cap_bit == 0 {
            return Err(PowerError::Unsupported {
                backend: "vm link",
                op,
                why: "the VM did not advertise this capability",
            });
        }
        tx.send(encode_control(&[code]))
            .map_err(|_| PowerError::Unsupported {
                backend: "vm link",
                op,
                why: "the VM disconnected",
            })
    }
}

impl PowerBackend for VmLink {
    fn is_on(&self) -> Result<bool, PowerError> {
        Ok(self.connected())
    }

    fn apply(&self, op: PowerOp) -> Result<(), PowerError> {
        match op {
            PowerOp::Off => self.send_op(op, control::POWER_OFF, 0x01),
            PowerOp::Reset | PowerOp::Cycle => self.send_op(op, control::RESET, 0x02),
            PowerOp::Soft => self.send_op(op, control::GRACEFUL_SHUTDOWN, 0x20),
            PowerOp::Nmi => self.send_op(op, control::SEND_NMI, 0x08),
            PowerOp::On if self.connected() => Ok(()),
            // The protocol has no power-on: a stopped VM has no socket.
            PowerOp::On => Err(PowerError::Unsupported {
                backend: "vm link",
                op,
                why: "the VM protocol cannot start a stopped VM; use the libvirt backend",
            }),
        }
    }
}

/// QEMU arguments that attach a guest to the in-band socket at `socket`.
pub fn qemu_args(socket: &Path) -> Vec<String> {
    vec![
        "-chardev".into(),
        format!(
            "socket,id=ipmi0,path={},reconnect-ms=1000",
            socket.display()
        ),
        "-device".into(),
        "ipmi-bmc-extern,chardev=ipmi0,id=bmc0".into(),
        "-device".into(),
        "isa-ipmi-kcs,bmc=bmc0".into(),
    ]
}

/// Bind the unix socket, replacing a stale socket file from an earlier run.
pub fn listen(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        std::fs::remove_file(path)?;
    }
    UnixListener::bind(path)
}

/// Accept QEMU connections until shutdown; a new connection replaces the old.
pub async fn serve(
    bmc: Arc<Bmc>,
    link: Arc<VmLink>,
    listener: UnixListener,
    path: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(bmc = %bmc.name, error = %e, "in-band accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let mut sd = shutdown.clone();
        tokio::select! {
            _ = connection(bmc.clone(), link.clone(), stream) => {}
            _ = sd.changed() => break,
        }
    }
    link.lock().tx = None;
    let _ = std::fs::remove_file(&path);
}

async fn connection(bmc: Arc<Bmc>, link: Arc<VmLink>, stream: UnixStream) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    {
        let mut st = link.lock();
        st.tx = Some(tx.clone());
        st.connections += 1;
    }
    let _ = tx.send(encode_control(&[control::VERSION, 1]));
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut dec = Decoder::default();
    let mut buf = [0u8; 512];
    let mut frames = Vec::new();
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        dec.feed(&buf[..n], &mut frames);
        for f in frames.drain(..) {
            match f {
                Frame::Request {
                    seq,
                    netfn,
                    lun,
                    cmd,
                    data,
                } => {
                    let reply = bmc.handle_inband(netfn, cmd, &data);
                    let _ = tx.send(encode_response(seq, netfn, lun, cmd, reply.cc, &reply.data));
                }
                // Only the capabilities matter. QEMU's ipmi-bmc-extern would
                // send VM_CMD_RESET only from its IPMIBmcClass.handle_reset
                // hook, which no QEMU device calls (docs/bmc.md).
                Frame::Control(c) => {
                    if c[0] == control::CAPABILITIES {
                        link.lock().caps = c.get(1).copied().unwrap_or(0);
                    }
                }
            }
        }
    }
    {
        let mut st = link.lock();
        // Only forget the sender if it is still ours (not a newer connection).
        if st.tx.as_ref().is_some_and(|t| t.same_channel(&tx)) {
            st.tx = None;
        }
    }
    drop(tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_roundtrip_and_bad_frames_drop() {
        // A request whose data contains all three special bytes.
        let req = encode_request(0xA0, 0x06, 0, 0xAA, &[0xA1, 1]);
        assert!(
            !req[..req.len() - 1]
                .iter()
                .any(|b| matches!(b, 0xA0 | 0xA1))
        );
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.feed(&req, &mut out);
        assert_eq!(
            out,
            vec![Frame::Request {
                seq: 0xA0,
                netfn: 6,
                lun: 0,
                cmd: 0xAA,
                data: vec![0xA1, 1]
            }]
        );
        out.clear();
        // Bad checksum, escape at the end, empty frame: all dropped.
        d.feed(
            &[1, 0x18, 1, 0, MSG_END, 1, ESCAPE, MSG_END, MSG_END],
            &mut out,
        );
        assert!(out.is_empty());
        d.feed(&encode_control(&[0x08, 0x3F]), &mut out);
        assert_eq!(out, vec![Frame::Control(vec![0x08, 0x3F])]);
        let resp = encode_response(7, 6, 0, 1, 0, &[0xA0]);
        let mut raw = Vec::new();
        let mut esc = false;
        for &b in &resp[..resp.len() - 1] {
            if b == ESCAPE {
                esc = true;
                continue;
            }
            raw.push(if std::mem::take(&mut esc) {
                b & !0x10
            } else {
                b
            });
        }
        assert_eq!(decode_response(&raw), Some((7, 7, 1, 0, vec![0xA0])));
    }
}
