//! The kernel modules the guest loads at boot, with their dependencies
//! from `modules.dep`, in an order that loads each after what it needs.
//!
//! `modules.dep` lists, for each module file, the files it depends on
//! (all of them, not only the direct ones). A module built into the kernel
//! is in `modules.builtin` and needs no loading.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::vm::VmError;

/// The modules the initramfs loads to reach the system disk: virtio's
/// PCI transport, its block driver, ext4 (checksums want crc32c) and
/// overlayfs for the writable layer over it. They are in [`BOOT`] too;
/// the later loading skips what is loaded.
pub const EARLY: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "crc32c_generic",
    "ext4",
    "overlay",
];

/// The modules the guest loads before it starts the engine, by name (`-`
/// and `_` are the same): virtio's PCI transport (the machine is `q35`; no
/// MMIO transport) and the devices the boot itself uses (disks, the
/// network for `eth0`, the serial ports of the host channel), the data
/// disk's ext4 (whose checksums want crc32c), overlayfs for container root
/// filesystems, and 9p over virtio for the shared host folders, which the
/// engine is told about when it starts (`9p` brings `9pnet`, `netfs` and
/// `fscache` through `modules.dep`), and the ACPI power button with its
/// input events, so that no press is lost while the rest loads. The
/// initramfs loaded [`EARLY`] already.
pub const BOOT: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_console",
    "crc32c_generic",
    "ext4",
    "overlay",
    "9pnet_virtio",
    "9p",
    "button",
    "evdev",
];

/// The modules the guest loads while the engine starts, which nothing
/// before the engine's first network needs: bridges and veth pairs for
/// networks, what the firewall's nftables rules use (nat chains,
/// masquerade, ct, fib), so the kernel never has to ask for a module it
/// cannot find; and the balloon (only for free page reporting). Under
/// emulation loading them took about half a second of the boot; the engine waits for them only before it
/// first touches a bridge or the firewall (`SERVIN_KERNEL_MODULES`).
pub const LATER: &[&str] = &[
    "bridge",
    "veth",
    "nf_tables",
    "nft_chain_nat",
    "nft_nat",
    "nft_masq",
    "nft_ct",
    "nft_fib_inet",
    "virtio_balloon",
];

/// The marker a signed module ends with.
const SIGNED: &[u8] = b"~Module signature appended~\n";

/// `module` without its appended signature, if it has one.
///
/// The guest loads modules that servin copied from the host's own kernel
/// package; checking each one's signature again costs a SHA-256 of the
/// whole module and an RSA verification, which under emulation made up
/// much of the boot. A kernel that does not enforce signatures (Debian's,
/// without Secure Boot: the guest has no firmware at all) loads an
/// unsigned module and notes it once as a taint.
pub fn unsigned(module: &[u8]) -> &[u8] {
    // struct module_signature: 12 bytes, the signature's length big-endian
    // in its last 4, then the signature, then the marker.
    let Some(body) = module.strip_suffix(SIGNED) else {
        return module;
    };
    let Some(info) = body.len().checked_sub(12).and_then(|at| body.get(at..)) else {
        return module;
    };
    let sig_len = u32::from_be_bytes([info[8], info[9], info[10], info[11]]) as usize;
    match body.len().checked_sub(12 + sig_len) {
        Some(end) => &body[..end],
        None => module,
    }
}

fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

/// A module's name from its path (`kernel/fs/ext4/ext4.ko.xz` -> `ext4`).
fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    canonical(file.split(".ko").next().unwrap_or(file))
}

/// The module files (relative to the modules folder) to load, in order,
/// for `wanted`, read from `modules.dep` and `modules.builtin` text.
pub fn load_order(
    wanted: &[&str],
    dep: &str,
    builtin: &str,
    version: &str,
    dir: &Path,
) -> Result<Vec<String>, VmError> {
    let mut by_name: BTreeMap<String, (&str, Vec<&str>)> = BTreeMap::new();
    for line in dep.lines() {
        let Some((file, deps)) = line.split_once(':') else {
            continue;
        };
        let file = file.trim();
        by_name.insert(module_name(file), (file, deps.split_whitespace().collect()));
    }
    let builtin: BTreeSet<String> = builtin.lines().map(|l| module_name(l.trim())).collect();
    let deps_of: BTreeMap<&str, &Vec<&str>> = by_name.values().map(|(f, d)| (*f, d)).collect();
    let mut order = Vec::new();
    let mut placed = BTreeSet::new();
    for name in wanted {
        let name = canonical(name);
        let Some((file, _)) = by_name.get(&name) else {
            if builtin.contains(&name) {
                continue;
            }
            return Err(VmError::MissingModule {
                module: name,
                version: version.to_string(),
                modules: dir.to_path_buf(),
            });
        };
        place(file, &deps_of, &mut placed, &mut order);
    }
    Ok(order)
}

/// Puts `file` in `order` after everything it depends on.
fn place<'a>(
    file: &'a str,
    deps_of: &BTreeMap<&'a str, &'a Vec<&'a str>>,
    placed: &mut BTreeSet<&'a str>,
    order: &mut Vec<String>,
) {
    if !placed.insert(file) {
        return;
    }
    if let Some(deps) = deps_of.get(file) {
        // modules.dep lists dependencies from the most dependent down.
        for dep in deps.iter().rev() {
            place(dep, deps_of, placed, order);
        }
    }
    order.push(file.to_string());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const DEP: &str = "\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/net/netfilter/nft_nat.ko: kernel/net/netfilter/nf_tables.ko kernel/net/netfilter/nfnetlink.ko kernel/net/netfilter/nf_nat.ko kernel/net/netfilter/nf_conntrack.ko
kernel/net/netfilter/nf_tables.ko: kernel/net/netfilter/nfnetlink.ko
kernel/net/netfilter/nfnetlink.ko:
kernel/net/netfilter/nf_nat.ko: kernel/net/netfilter/nf_conntrack.ko
kernel/net/netfilter/nf_conntrack.ko:
kernel/crypto/crc32c-generic.ko.xz:
";

    #[test]
    fn a_signature_is_taken_off_and_an_unsigned_module_is_kept() {
        let mut signed = b"\x7fELF module body".to_vec();
        let sig = vec![0xAB; 5];
        signed.extend_from_slice(&sig);
        signed.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
        signed.extend_from_slice(SIGNED);
        assert_eq!(unsigned(&signed), b"\x7fELF module body");
        assert_eq!(unsigned(b"\x7fELF plain"), b"\x7fELF plain");
        // A marker with a length longer than the file: left as it is.
        let mut odd = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        odd.extend_from_slice(SIGNED);
        assert_eq!(unsigned(&odd), odd.as_slice());
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let order = load_order(
            &["nft_nat", "ext4", "nf_tables", "crc32c_generic", "veth"],
            DEP,
            "kernel/drivers/net/veth.ko\n",
            "6.1",
            Path::new("/m"),
        )
        .unwrap();
        let pos = |m: &str| order.iter().position(|f| f.contains(m)).unwrap();
        assert!(pos("nfnetlink") < pos("nf_tables.ko"));
        assert!(pos("nf_conntrack") < pos("nf_nat.ko"));
        assert!(pos("nf_nat.ko") < pos("nft_nat"));
        assert!(pos("jbd2") < pos("ext4"));
        assert_eq!(order.len(), 10, "{order:?}");
        assert!(order.iter().any(|f| f.ends_with("crc32c-generic.ko.xz")));
    }

    #[test]
    fn a_missing_module_is_named() {
        let e = load_order(&["overlay"], DEP, "", "6.1", Path::new("/m"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("kernel module overlay"), "{e}");
        assert!(e.contains("/m"), "{e}");
    }
}
