//! The shared libraries a dynamic program needs, found the way the
//! dynamic loader finds them: the ELF's `DT_NEEDED` names, looked up in the
//! system's library folders, recursively, plus the loader itself
//! (`PT_INTERP`). They go into the initramfs at the same paths, so the
//! programs run there without the host.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Endianness, elf};

use crate::vm::VmError;

/// Where libraries are looked for, in order (Debian's multiarch folders
/// first, as its loader does).
pub const LIBRARY_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// What an ELF program asks of the loader.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// `PT_INTERP`: the loader's path; none for a static program.
    pub interpreter: Option<String>,
    /// `DT_NEEDED`: library names.
    pub libraries: Vec<String>,
}

/// The loader and libraries `data` (an ELF file) names.
pub fn needs(data: &[u8]) -> Result<Needs, String> {
    let file =
        ElfFile64::<Endianness>::parse(data).map_err(|e| format!("not a 64-bit ELF: {e}"))?;
    let endian = file.endian();
    let mut out = Needs::default();
    for header in file.elf_program_headers() {
        if let Some(interp) = header
            .interpreter(endian, data)
            .map_err(|e| format!("read its interpreter: {e}"))?
        {
            out.interpreter = Some(String::from_utf8_lossy(interp).into_owned());
        }
    }
    let table = file
        .elf_section_table()
        .dynamic_table(endian, data)
        .map_err(|e| format!("read its dynamic section: {e}"))?;
    for entry in table.iter() {
        if entry.tag == elf::DT_NEEDED {
            let name = table
                .string(entry)
                .map_err(|e| format!("read a library name: {e}"))?;
            out.libraries
                .push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(out)
}

/// Every file (loader and libraries, as looked-up paths) `binaries` need
/// to run, found in `dirs`.
pub fn closure(binaries: &[PathBuf], dirs: &[&str]) -> Result<BTreeSet<PathBuf>, VmError> {
    let mut found = BTreeSet::new();
    let mut todo: Vec<PathBuf> = binaries.to_vec();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    while let Some(binary) = todo.pop() {
        if !seen.insert(binary.clone()) {
            continue;
        }
        let data = std::fs::read(&binary).map_err(VmError::file(&binary))?;
        let needs = needs(&data).map_err(|message| VmError::BadBinary {
            binary: binary.clone(),
            message,
        })?;
        if let Some(interp) = needs.interpreter {
            let path = PathBuf::from(&interp);
            if !path.is_file() {
                return Err(VmError::BadBinary {
                    binary,
                    message: format!("its loader {interp} is missing"),
                });
            }
            found.insert(path);
        }
        for library in needs.libraries {
            let path = dirs
                .iter()
                .map(|d| Path::new(d).join(&library))
                .find(|p| p.is_file())
                .ok_or_else(|| VmError::MissingLibrary {
                    binary: binary.clone(),
                    library: library.clone(),
                    searched: dirs.join(", "),
                })?;
            if found.insert(path.clone()) {
                todo.push(path);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_dynamic_program_names_its_loader_and_libc() {
        let exe = std::env::current_exe().unwrap();
        let n = needs(&std::fs::read(&exe).unwrap()).unwrap();
        assert!(n.interpreter.unwrap().contains("ld-linux"));
        assert!(
            n.libraries.iter().any(|l| l.starts_with("libc.so")),
            "{:?}",
            n.libraries
        );
        let all = closure(&[exe], LIBRARY_DIRS).unwrap();
        assert!(all.iter().any(|p| p.ends_with("libc.so.6")), "{all:?}");
    }

    #[test]
    fn a_missing_library_is_named() {
        let exe = std::env::current_exe().unwrap();
        let e = closure(&[exe], &["/nonexistent"]).unwrap_err().to_string();
        assert!(e.contains("needs the shared library"), "{e}");
        assert!(e.contains("/nonexistent"), "{e}");
        let e = needs(b"#!/bin/sh\n").unwrap_err();
        assert!(e.contains("not a 64-bit ELF"), "{e}");
    }
}
