//! A file tree in memory and its newc ("070701") cpio serialisation, the
//! format the Linux kernel unpacks as an initramfs.
//!
//! Output is deterministic: entries in path order, mtime 0, owner root,
//! inode numbers counted from 1. Same tree -> same bytes -> same hash.

use std::collections::BTreeMap;

/// One node of the initramfs tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File {
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        target: String,
    },
    /// A character device; /dev/console must exist before devtmpfs is mounted
    /// or the kernel starts /init with no stdin/stdout.
    CharDev {
        mode: u32,
        major: u32,
        minor: u32,
    },
}

/// Paths (absolute, `/`-separated) to nodes; parents are created on insert.
#[derive(Debug, Default, Clone)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    pub fn new() -> Self {
        Tree::default()
    }

    /// Insert (or replace) a node, creating missing parent directories.
    pub fn insert(&mut self, path: &str, node: Node) {
        let path = normalize(path);
        let mut parent = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            self.nodes.entry(parent.clone()).or_insert(Node::Dir);
        }
        self.nodes.insert(path, node);
    }

    /// Insert only when nothing is at `path` yet.
    pub fn insert_if_absent(&mut self, path: &str, node: Node) {
        if !self.contains(path) {
            self.insert(path, node);
        }
    }

    pub fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(&normalize(path))
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(&normalize(path))
    }

    /// Every path (without the leading `/`) and its node, in archive order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// The newc archive, with the `TRAILER!!!` entry.
    pub fn to_newc(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (path, node)) in self.nodes.iter().enumerate() {
            let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match node {
                Node::Dir => (0o040755, &[], (0, 0)),
                Node::File { mode, data } => (0o100000 | (mode & 0o7777), data, (0, 0)),
                Node::Symlink { target } => (0o120777, target.as_bytes(), (0, 0)),
                Node::CharDev { mode, major, minor } => {
                    (0o020000 | (mode & 0o7777), &[], (*major, *minor))
                }
            };
            let nlink = if matches!(node, Node::Dir) { 2 } else { 1 };
            write_entry(&mut out, path, ino as u32 + 1, mode, nlink, rdev, data);
        }
        write_entry(&mut out, "TRAILER!!!", 0, 0, 1, (0, 0), &[]);
        out
    }
}

/// One entry read back from a newc archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path without the leading `/`, as stored.
    pub path: String,
    /// Full st_mode (type and permission bits).
    pub mode: u32,
    pub data: Vec<u8>,
}

/// Read a newc archive back (for tests and `image inspect`); stops at the
/// trailer. `None` when the bytes are not a well-formed newc archive.
pub fn read_newc(bytes: &[u8]) -> Option<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    loop {
        let header = bytes.get(at..at + 110)?;
        if &header[..6] != b"070701" {
            return None;
        }
        let field = |i: usize| {
            std::str::from_utf8(&header[6 + i * 8..14 + i * 8])
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
        };
        let (mode, size, namesize) = (field(1)?, field(6)? as usize, field(11)? as usize);
        let name_start = at + 110;
        let name = bytes.get(name_start..name_start + namesize.checked_sub(1)?)?;
        let path = String::from_utf8_lossy(name).into_owned();
        let data_start = (name_start + namesize).next_multiple_of(4);
        let data = bytes.get(data_start..data_start + size)?.to_vec();
        at = (data_start + size).next_multiple_of(4);
        if path == "TRAILER!!!" {
            return Some(entries);
        }
        entries.push(Entry { path, mode, data });
    }
}

pub(crate) fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn write_entry(
    out: &mut Vec<u8>,
    name: &str,
    ino: u32,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    data: &[u8],
) {
    // newc header: magic + 13 fields of 8 hex digits (see the kernel's
    // Documentation/driver-api/early-userspace/buffer-format.rst).
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        data.len() as u32,
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        name.len() as u32 + 1, // namesize includes the NUL
        0,                     // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_created_and_sorted_first() {
        let mut t = Tree::new();
        t.insert(
            "/usr/sbin/ipmi-config",
            Node::File {
                mode: 0o755,
                data: b"x".to_vec(),
            },
        );
        let paths: Vec<_> = t.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(paths, ["usr", "usr/sbin", "usr/sbin/ipmi-config"]);
    }

    #[test]
    fn newc_layout_is_aligned_and_ends_with_trailer() {
        let mut t = Tree::new();
        t.insert(
            "/init",
            Node::File {
                mode: 0o755,
                data: b"#!/bin/sh\n".to_vec(),
            },
        );
        t.insert(
            "/bin/sh",
            Node::Symlink {
                target: "busybox".into(),
            },
        );
        t.insert(
            "/dev/console",
            Node::CharDev {
                mode: 0o600,
                major: 5,
                minor: 1,
            },
        );
        let bytes = t.to_newc();
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("TRAILER!!!"));
        // The console node carries rdev 5:1 and char-device mode 020600.
        let at = text.find("dev/console").unwrap();
        let header = &text[at - 110..at];
        assert_eq!(&header[14..22], "00002180");
        assert_eq!(&header[78..86], "00000005");
        assert_eq!(&header[86..94], "00000001");
        assert_eq!(t.to_newc(), bytes, "same tree, same bytes");
        let back = read_newc(&bytes).unwrap();
        let init = back.iter().find(|e| e.path == "init").unwrap();
        assert_eq!(
            (init.mode, init.data.as_slice()),
            (0o100755, b"#!/bin/sh\n".as_slice())
        );
        let sh = back.iter().find(|e| e.path == "bin/sh").unwrap();
        assert_eq!(sh.data, b"busybox");
    }
}
