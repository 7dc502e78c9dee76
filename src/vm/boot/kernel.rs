//! The guest's kernel: found on the host, and turned from a bzImage into
//! the uncompressed `vmlinux` QEMU boots directly through its PVH entry.
//!
//! A bzImage is a real-mode setup block followed by a compressed payload;
//! the boot protocol header (at 0x1f1, `HdrS` at 0x202) says where the
//! payload starts (`payload_offset`, after the setup sectors) and how long
//! it is (`payload_length`), and where the version string is
//! (`kernel_version`). Debian compresses the payload with xz (with the x86
//! BCJ filter, which liblzma decodes). The payload is the kernel's ELF
//! image; it boots without firmware when it carries the Xen
//! `PHYS32_ENTRY` note (PVH, `CONFIG_PVH`).

use std::path::{Path, PathBuf};

use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Endianness, elf};

use crate::vm::VmError;

/// A kernel and its modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The bzImage (or vmlinux) on the host.
    pub image: PathBuf,
    /// Its release, as `uname -r` says it (`6.1.0-57-amd64`).
    pub version: String,
    /// `/lib/modules/<version>`.
    pub modules: PathBuf,
}

/// Where kernels and their modules are looked for.
pub struct Places<'a> {
    /// Holds `vmlinuz-<version>` files.
    pub boot: &'a Path,
    /// Holds `<version>/modules.dep`.
    pub modules: &'a Path,
}

impl Places<'static> {
    /// The host's `/boot` and `/lib/modules`.
    pub fn host() -> Self {
        Places {
            boot: Path::new("/boot"),
            modules: Path::new("/lib/modules"),
        }
    }
}

/// The kernel to boot: `SERVIN_VM_KERNEL` when set, else the newest
/// `vmlinuz-*` in `/boot` whose modules are installed.
pub fn find() -> Result<Kernel, VmError> {
    match std::env::var_os("SERVIN_VM_KERNEL").filter(|v| !v.is_empty()) {
        Some(path) => named(Path::new(&path), &Places::host()),
        None => newest(&Places::host()),
    }
}

/// The kernel at `image`, whose version is read from its header (or, for
/// a vmlinux, from its file name `vmlinu?-<version>`).
pub fn named(image: &Path, places: &Places) -> Result<Kernel, VmError> {
    let data = std::fs::read(image).map_err(VmError::file(image))?;
    let version = header_version(&data)
        .or_else(|| version_from_name(image))
        .ok_or_else(|| VmError::BadKernel {
            kernel: image.to_path_buf(),
            message: "cannot tell its version: neither a bzImage header nor a name like vmlinuz-<version>".to_string(),
        })?;
    let modules = places.modules.join(&version);
    if !modules.join("modules.dep").is_file() {
        return Err(VmError::NoModules {
            kernel: image.to_path_buf(),
            version,
            modules,
        });
    }
    Ok(Kernel {
        image: image.to_path_buf(),
        version,
        modules,
    })
}

/// The newest `vmlinuz-<version>` in `places.boot` with its modules.
pub fn newest(places: &Places) -> Result<Kernel, VmError> {
    let mut found: Vec<(Vec<u64>, Kernel)> = Vec::new();
    let mut without_modules = Vec::new();
    if let Ok(entries) = std::fs::read_dir(places.boot) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(version) = name.strip_prefix("vmlinuz-") else {
                continue;
            };
            let modules = places.modules.join(version);
            if !modules.join("modules.dep").is_file() {
                without_modules.push(version.to_string());
                continue;
            }
            found.push((
                version_key(version),
                Kernel {
                    image: entry.path(),
                    version: version.to_string(),
                    modules,
                },
            ));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some((_, kernel)) = found.pop() {
        return Ok(kernel);
    }
    let searched = if without_modules.is_empty() {
        format!("no vmlinuz-* in {}", places.boot.display())
    } else {
        format!(
            "{} has {}, but {} holds no modules for {}",
            places.boot.display(),
            without_modules
                .iter()
                .map(|v| format!("vmlinuz-{v}"))
                .collect::<Vec<_>>()
                .join(", "),
            places.modules.display(),
            if without_modules.len() == 1 {
                "it"
            } else {
                "them"
            }
        )
    };
    Err(VmError::NoKernel { searched })
}

/// The numbers of a version, for ordering (`6.1.0-57` before `6.1.0-112`).
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

fn version_from_name(image: &Path) -> Option<String> {
    let name = image.file_name()?.to_str()?;
    let version = name
        .strip_prefix("vmlinuz-")
        .or_else(|| name.strip_prefix("vmlinux-"))?;
    (!version.is_empty()).then(|| version.to_string())
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn is_bzimage(data: &[u8]) -> bool {
    data.get(0x202..0x206) == Some(b"HdrS")
}

/// The release named by a bzImage's header (the first word of its
/// version string).
pub fn header_version(data: &[u8]) -> Option<String> {
    if !is_bzimage(data) {
        return None;
    }
    let at = usize::from(u16_at(data, 0x20e)?);
    if at == 0 {
        return None;
    }
    let text = data.get(at + 0x200..)?;
    let end = text.iter().position(|&b| b == 0 || b == b' ')?;
    let version = std::str::from_utf8(&text[..end]).ok()?;
    (!version.is_empty()).then(|| version.to_string())
}

const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// The uncompressed ELF kernel inside `data` (a bzImage, or already a
/// vmlinux), checked for a PVH entry.
pub fn vmlinux(data: &[u8], image: &Path) -> Result<Vec<u8>, VmError> {
    let bad = |message: String| VmError::BadKernel {
        kernel: image.to_path_buf(),
        message,
    };
    let elf = if data.starts_with(b"\x7fELF") {
        data.to_vec()
    } else if is_bzimage(data) {
        let payload = payload(data).ok_or_else(|| {
            bad("its bzImage header has no payload (boot protocol 2.08 or newer needed)".into())
        })?;
        if !payload.starts_with(XZ_MAGIC) {
            let head: Vec<String> = payload.iter().take(4).map(|b| format!("{b:02x}")).collect();
            return Err(bad(format!(
                "its payload is not xz-compressed (it starts with {}); servin reads xz kernels such as Debian's",
                head.join(" ")
            )));
        }
        unxz(payload).map_err(|e| bad(format!("decompress its xz payload: {e}")))?
    } else {
        return Err(bad("neither a bzImage nor an ELF vmlinux".into()));
    };
    if !has_pvh_entry(&elf).map_err(bad)? {
        return Err(bad(
            "it has no PVH entry note (a kernel built without CONFIG_PVH cannot be booted directly)"
                .into(),
        ));
    }
    let mut elf = elf;
    trim_zero_tails(&mut elf);
    Ok(elf)
}

/// Shortens the file part of each loaded segment by the zeros it ends with
/// (the kernel's `.bss`, `.brk` and `.init.scratch`, about 24 MiB of a
/// Debian kernel's last segment): a loader zero-fills a segment's memory
/// beyond its file part, so the guest sees the same memory, and QEMU, which
/// keeps the file mapped and copies from it, never reads (nor keeps
/// resident) those pages. Headers it cannot read are left as they are.
fn trim_zero_tails(elf: &mut [u8]) {
    const PT_LOAD: u32 = 1;
    let (Some(phoff), Some(entsize), Some(count)) =
        (u64_at(elf, 0x20), u16_at(elf, 0x36), u16_at(elf, 0x38))
    else {
        return;
    };
    for i in 0..usize::from(count) {
        let Some(at) = usize::try_from(phoff)
            .ok()
            .and_then(|p| p.checked_add(i * usize::from(entsize)))
        else {
            return;
        };
        let (Some(kind), Some(offset), Some(filesz)) =
            (u32_at(elf, at), u64_at(elf, at + 8), u64_at(elf, at + 0x20))
        else {
            return;
        };
        if kind != PT_LOAD {
            continue;
        }
        let (Ok(start), Ok(len)) = (usize::try_from(offset), usize::try_from(filesz)) else {
            continue;
        };
        let Some(bytes) = start.checked_add(len).and_then(|end| elf.get(start..end)) else {
            continue;
        };
        let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        // Whole 8-byte words, as the loader may copy them.
        let kept = used.next_multiple_of(8).min(len) as u64;
        if let Some(field) = elf.get_mut(at + 0x20..at + 0x28) {
            field.copy_from_slice(&kept.to_le_bytes());
        }
    }
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        data.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// Decompresses the xz stream at the start of `input`, ignoring what
/// follows it (the kernel appends the uncompressed size).
pub(crate) fn unxz(input: &[u8]) -> Result<Vec<u8>, String> {
    use xz2::stream::{Action, Status, Stream};
    let mut stream = Stream::new_stream_decoder(u64::MAX, 0).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(input.len() * 8);
    loop {
        if out.capacity() - out.len() < 1 << 20 {
            out.reserve(out.capacity().max(1 << 20));
        }
        let consumed = stream.total_in() as usize;
        let rest = input.get(consumed..).unwrap_or_default();
        let before = (stream.total_in(), stream.total_out());
        let status = stream
            .process_vec(rest, &mut out, Action::Run)
            .map_err(|e| e.to_string())?;
        match status {
            Status::StreamEnd => return Ok(out),
            _ if before == (stream.total_in(), stream.total_out()) && rest.is_empty() => {
                return Err("the stream ends early".to_string());
            }
            _ => {}
        }
    }
}

/// The compressed payload of a bzImage.
fn payload(data: &[u8]) -> Option<&[u8]> {
    if u16_at(data, 0x206)? < 0x208 {
        return None;
    }
    let setup_sects = match *data.get(0x1f1)? {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512 + usize::try_from(u32_at(data, 0x248)?).ok()?;
    let len = usize::try_from(u32_at(data, 0x24c)?).ok()?;
    data.get(start..start.checked_add(len)?)
}

/// Whether an ELF kernel has the Xen `PHYS32_ENTRY` note of PVH boot.
fn has_pvh_entry(data: &[u8]) -> Result<bool, String> {
    const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
    let file =
        ElfFile64::<Endianness>::parse(data).map_err(|e| format!("not a 64-bit ELF: {e}"))?;
    let endian = file.endian();
    for header in file.elf_program_headers() {
        let Ok(Some(mut notes)) = header.notes(endian, data) else {
            continue;
        };
        while let Ok(Some(note)) = notes.next() {
            if note.name() == b"Xen"
                && note.n_type(endian) == elf::NoteType(XEN_ELFNOTE_PHYS32_ENTRY)
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn header(version: &str) -> Vec<u8> {
        let mut data = vec![0u8; 0x1000];
        data[0x202..0x206].copy_from_slice(b"HdrS");
        data[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        data[0x20e..0x210].copy_from_slice(&0x300u16.to_le_bytes());
        let text = format!("{version} (debian-kernel@lists.debian.org) #1 SMP\0");
        data[0x500..0x500 + text.len()].copy_from_slice(text.as_bytes());
        data
    }

    /// A little-endian ELF64 header with `segments` program headers
    /// (type, offset, file size, memory size) at 64, and `len` bytes.
    fn elf_with(segments: &[(u32, u64, u64, u64)], len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len];
        d[..4].copy_from_slice(b"\x7fELF");
        d[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        d[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        d[0x38..0x3a].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        for (i, (kind, off, filesz, memsz)) in segments.iter().enumerate() {
            let at = 64 + i * 56;
            d[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            d[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            d[at + 0x20..at + 0x28].copy_from_slice(&filesz.to_le_bytes());
            d[at + 0x28..at + 0x30].copy_from_slice(&memsz.to_le_bytes());
        }
        d
    }

    fn filesz(d: &[u8], i: usize) -> u64 {
        u64_at(d, 64 + i * 56 + 0x20).unwrap()
    }

    #[test]
    fn loaded_segments_lose_their_trailing_zeros_only() {
        // A loaded segment with data then zeros, one all zeros, one with no
        // zeros at its end, a note (not loaded) with zeros, and one whose
        // file part runs past the end of the file.
        let mut d = elf_with(
            &[
                (1, 0x200, 0x100, 0x100),
                (1, 0x300, 0x80, 0x1000),
                (1, 0x380, 0x10, 0x10),
                (4, 0x200, 0x100, 0x100),
                (1, 0x380, 0x1000, 0x1000),
            ],
            0x400,
        );
        d[0x200..0x20b].copy_from_slice(b"hello world");
        d[0x380..0x390].copy_from_slice(&[7u8; 16]);
        trim_zero_tails(&mut d);
        assert_eq!(filesz(&d, 0), 16); // 11 bytes, to whole words
        assert_eq!(filesz(&d, 1), 0);
        assert_eq!(filesz(&d, 2), 0x10);
        assert_eq!(filesz(&d, 3), 0x100);
        assert_eq!(filesz(&d, 4), 0x1000);
        // Memory sizes are kept: the loader zero-fills the rest.
        assert_eq!(u64_at(&d, 64 + 0x28).unwrap(), 0x100);
    }

    #[test]
    fn a_truncated_header_is_left_alone() {
        let mut d = vec![0x7f, b'E', b'L', b'F', 0, 0];
        trim_zero_tails(&mut d);
        assert_eq!(d, [0x7f, b'E', b'L', b'F', 0, 0]);
    }

    #[test]
    fn the_version_comes_from_the_header() {
        assert_eq!(
            header_version(&header("6.1.0-57-amd64")).as_deref(),
            Some("6.1.0-57-amd64")
        );
        assert_eq!(header_version(b"not a kernel"), None);
    }

    #[test]
    fn a_payload_that_is_not_xz_is_named() {
        let mut data = header("6.1.0-1-amd64");
        data[0x1f1] = 1;
        data[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
        data[0x24c..0x250].copy_from_slice(&16u32.to_le_bytes());
        data[0x400..0x404].copy_from_slice(&[0x1f, 0x8b, 8, 0]);
        let e = vmlinux(&data, Path::new("/k")).unwrap_err().to_string();
        assert!(
            e.contains("not xz-compressed (it starts with 1f 8b 08 00)"),
            "{e}"
        );
        let e = vmlinux(b"junk", Path::new("/k")).unwrap_err().to_string();
        assert!(
            e.contains("/k: neither a bzImage nor an ELF vmlinux"),
            "{e}"
        );
    }

    #[test]
    fn the_newest_kernel_with_modules_wins() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("boot");
        let modules = dir.path().join("modules");
        std::fs::create_dir_all(&boot).unwrap();
        for v in ["6.1.0-9-amd64", "6.1.0-57-amd64", "6.12.0-1-amd64"] {
            std::fs::write(boot.join(format!("vmlinuz-{v}")), b"").unwrap();
        }
        for v in ["6.1.0-9-amd64", "6.1.0-57-amd64"] {
            std::fs::create_dir_all(modules.join(v)).unwrap();
            std::fs::write(modules.join(v).join("modules.dep"), b"").unwrap();
        }
        let places = Places {
            boot: &boot,
            modules: &modules,
        };
        let k = newest(&places).unwrap();
        assert_eq!(k.version, "6.1.0-57-amd64");
        std::fs::remove_dir_all(&modules).unwrap();
        let e = newest(&places).unwrap_err().to_string();
        assert!(e.contains("holds no modules for them"), "{e}");
        assert!(e.contains("apt install linux-image-amd64"), "{e}");
        std::fs::remove_dir_all(&boot).unwrap();
        let e = newest(&places).unwrap_err().to_string();
        assert!(e.contains("no vmlinuz-* in"), "{e}");
    }
}
