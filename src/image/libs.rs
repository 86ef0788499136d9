//! Shared libraries a host binary needs, found with ldd(1) so the answer is
//! the dynamic loader's own (search paths, multiarch dirs, the interpreter).

use std::path::{Path, PathBuf};

use crate::cmd::Cmd;

use super::ImageError;

/// What a file is, for deciding whether it has libraries.
pub fn is_dynamic_elf(data: &[u8]) -> bool {
    // A 64-bit little-endian ELF with a PT_INTERP (3) program header is
    // dynamically linked; scripts and static binaries are not.
    Elf64::new(data).is_some_and(|elf| {
        (0..elf.phnum)
            .filter_map(|i| elf.phdr(i))
            .any(|p| p.kind == 3)
    })
}

/// The sonames in an ELF64 file's DT_NEEDED entries (what the loader will
/// look for), read without running anything. Empty for non-ELF data.
pub fn elf_needed(data: &[u8]) -> Vec<String> {
    let Some(elf) = Elf64::new(data) else {
        return Vec::new();
    };
    let phdrs: Vec<Phdr> = (0..elf.phnum).filter_map(|i| elf.phdr(i)).collect();
    let Some(dynamic) = phdrs.iter().find(|p| p.kind == 2) else {
        return Vec::new();
    };
    let entries: Vec<(u64, u64)> = (0..dynamic.filesz / 16)
        .map_while(|i| {
            let o = (dynamic.offset + i * 16) as usize;
            Some((elf.u64(o)?, elf.u64(o + 8)?))
        })
        .take_while(|(tag, _)| *tag != 0)
        .collect();
    // DT_STRTAB (5) is an address; map it to a file offset through PT_LOAD.
    let Some(strtab) = entries.iter().find(|(t, _)| *t == 5).map(|(_, v)| *v) else {
        return Vec::new();
    };
    let Some(strtab_off) = phdrs
        .iter()
        .find(|p| p.kind == 1 && p.vaddr <= strtab && strtab < p.vaddr + p.filesz)
        .map(|p| strtab - p.vaddr + p.offset)
    else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|(t, _)| *t == 1) // DT_NEEDED
        .filter_map(|(_, v)| {
            let start = (strtab_off + v) as usize;
            let end = start + data.get(start..)?.iter().position(|b| *b == 0)?;
            Some(String::from_utf8_lossy(&data[start..end]).into_owned())
        })
        .collect()
}

struct Elf64<'a> {
    data: &'a [u8],
    phoff: u64,
    phentsize: u64,
    phnum: u64,
}

struct Phdr {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

impl<'a> Elf64<'a> {
    fn new(data: &'a [u8]) -> Option<Self> {
        if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
            return None;
        }
        let e = Elf64 {
            data,
            phoff: 0,
            phentsize: 0,
            phnum: 0,
        };
        Some(Elf64 {
            phoff: e.u64(32)?,
            phentsize: e.u16(54)?,
            phnum: e.u16(56)?,
            ..e
        })
    }
    fn u16(&self, o: usize) -> Option<u64> {
        Some(u16::from_le_bytes(self.data.get(o..o + 2)?.try_into().ok()?) as u64)
    }
    fn u32(&self, o: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.data.get(o..o + 4)?.try_into().ok()?,
        ))
    }
    fn u64(&self, o: usize) -> Option<u64> {
        Some(u64::from_le_bytes(
            self.data.get(o..o + 8)?.try_into().ok()?,
        ))
    }
    fn phdr(&self, i: u64) -> Option<Phdr> {
        let o = (self.phoff + i * self.phentsize) as usize;
        Some(Phdr {
            kind: self.u32(o)?,
            offset: self.u64(o + 8)?,
            vaddr: self.u64(o + 16)?,
            filesz: self.u64(o + 32)?,
        })
    }
}

/// Absolute paths of every library (and the loader) `binary` needs.
pub fn needed_libraries(binary: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let out = Cmd::new("ldd")
        .arg(binary.to_string_lossy())
        .run_blocking()
        .map_err(|source| ImageError::Ldd {
            binary: binary.to_path_buf(),
            source,
        })?;
    parse_ldd(&out).map_err(|library| ImageError::MissingLibrary {
        binary: binary.to_path_buf(),
        library,
    })
}

/// ldd lines -> paths; `Err(name)` for a library ldd could not find.
pub fn parse_ldd(output: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in output.lines().map(str::trim) {
        // "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)"
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"; "linux-vdso.so.1 (0x...)"
        if let Some((name, rest)) = line.split_once("=>") {
            let target = rest.split_whitespace().next().unwrap_or("");
            if target == "not" || target.is_empty() {
                return Err(name.trim().to_string());
            }
            if target.starts_with('/') {
                libs.push(PathBuf::from(target));
            }
        } else if let Some(path) = line
            .split_whitespace()
            .next()
            .filter(|p| p.starts_with('/'))
        {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_parses_to_paths() {
        let out = "\tlinux-vdso.so.1 (0x00007ff855231000)
\tlibipmidetect.so.0 => /lib/x86_64-linux-gnu/libipmidetect.so.0 (0x00007ff855165000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007ff854a1e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007ff855233000)
";
        let libs = parse_ldd(out).unwrap();
        assert_eq!(
            libs,
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libipmidetect.so.0"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn missing_library_is_named() {
        assert_eq!(
            parse_ldd("\tlibgone.so.1 => not found\n"),
            Err("libgone.so.1".into())
        );
    }

    #[test]
    fn host_ipmi_config_needs_freeipmi() {
        let data = std::fs::read("/usr/sbin/ipmi-config");
        if !crate::testing::require(
            "/usr/sbin/ipmi-config",
            data.is_ok(),
            "apt-get install freeipmi-tools",
        ) {
            return;
        }
        let data = data.unwrap();
        assert!(is_dynamic_elf(&data));
        let needed = elf_needed(&data);
        assert!(
            needed.iter().any(|n| n.starts_with("libfreeipmi.so")),
            "{needed:?}"
        );
    }

    #[test]
    fn scripts_are_not_dynamic_elf() {
        assert!(!is_dynamic_elf(
            b"#!/bin/sh\nexec /usr/sbin/ipmi-config --category=core \"$@\"\n"
        ));
    }
}
