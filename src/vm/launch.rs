//! What a VM start needs before QEMU runs: the size settings, the data
//! disk, the boot files, QEMU itself and the accelerator; and the QEMU
//! command made of them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use servin_values::share::Shares;

use super::MachineError;
use super::boot::prepare_boot;
use super::paths::VmPaths;
use super::qemu::{Accel, QemuCommand, probe_accelerator_cached, qemu_binary};
use super::settings::VmConfig;
use super::supervisor::MachineInfo;

/// Memory the host must have available to start a VM at all.
pub const MIN_AVAILABLE_MIB: u64 = 512;

/// QEMU on `PATH` (or `SERVIN_QEMU`).
pub fn find_qemu() -> Option<PathBuf> {
    let bin = qemu_binary();
    if bin.components().count() > 1 {
        return bin.is_file().then_some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(&bin))
        .find(|p| p.is_file())
}

/// `MemAvailable` of `/proc/meminfo`, in MiB.
pub fn available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024)
}

/// `SERVIN_VM_ACCEL` (`kvm` or `tcg`) when set, else the probe's answer,
/// remembered in `probe_cache` until the host reboots or QEMU changes.
/// (On some hosts `/dev/kvm` runs the probe's first instructions but not a
/// Linux guest: the variable is the way out there.)
pub fn accelerator(probe_cache: &Path) -> Result<Accel, MachineError> {
    match std::env::var("SERVIN_VM_ACCEL")
        .ok()
        .as_deref()
        .map(str::trim)
    {
        None | Some("") => Ok(probe_accelerator_cached(probe_cache)),
        Some("kvm") => Ok(Accel::Kvm),
        Some("tcg") => Ok(Accel::Tcg),
        Some(other) => Err(MachineError::Invalid(format!(
            "SERVIN_VM_ACCEL is {other:?}: want kvm or tcg"
        ))),
    }
}

/// Checks and prepares everything; returns the QEMU command and what it
/// starts.
pub fn prepare(paths: &VmPaths) -> Result<(Command, MachineInfo), MachineError> {
    let qemu = find_qemu().ok_or_else(|| {
        MachineError::Invalid(format!(
            "QEMU ({}) is not installed\nhelp: install it (apt install qemu-system-x86), or set SERVIN_QEMU to its path",
            qemu_binary().display()
        ))
    })?;
    std::fs::create_dir_all(paths.state()).map_err(MachineError::file(&paths.state()))?;
    let config = VmConfig::load_or_create(&paths.config())?;
    if let Some(avail) = available_mib()
        && avail < MIN_AVAILABLE_MIB
    {
        return Err(MachineError::Invalid(format!(
            "not enough memory to start the VM: {avail} MiB available, {MIN_AVAILABLE_MIB} MiB needed at least\nhelp: close programs, or lower memory_mib in {} (now {})",
            paths.config().display(),
            config.memory_mib
        )));
    }
    let disk = paths.disk();
    let size = config.disk_gib << 30;
    match std::fs::metadata(&disk) {
        Ok(m) if m.len() >= size => {}
        // A new disk, or a larger size asked for: sparse, so it costs
        // only what the guest writes. The guest formats a blank one.
        _ => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&disk)
                .map_err(MachineError::file(&disk))?;
            f.set_len(size).map_err(MachineError::file(&disk))?;
        }
    }
    let boot = prepare_boot(&paths.boot())?;
    let accel = accelerator(&paths.boot().join("accel-probe"))?;
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut shares = host_shares(&config, &paths.config());
    // For measuring the 9p cache modes (bench/vm-share.sh); the guest's
    // default is `mmap` (see the book's "Host folders").
    if let Some(mode) = std::env::var("SERVIN_VM_SHARE_CACHE")
        .ok()
        .filter(|m| !m.is_empty())
    {
        let mode = servin_values::share::check_cache(&mode)
            .map_err(|e| MachineError::Invalid(format!("SERVIN_VM_SHARE_CACHE: {e}")))?;
        shares.cache = Some(mode.to_string());
    }
    let mut q = QemuCommand::new(boot.clone(), &disk, &paths.channel(), &paths.console_log());
    q.firmware = super::qemu::find_qboot(&qemu);
    q.binary = qemu;
    q.cpus = config.cpus;
    q.memory_mib = config.memory_mib;
    q.accel = accel;
    q.epoch = Some(epoch);
    q.shares = shares.clone();
    let cmdline = q.kernel_cmdline();
    if cmdline.len() > MAX_CMDLINE {
        return Err(MachineError::Invalid(format!(
            "the shared folders do not fit on the VM's kernel command line ({} bytes, {MAX_CMDLINE} at most)\nhelp: share fewer or shorter folders in {} (a folder above several shares them all)",
            cmdline.len(),
            paths.config().display()
        )));
    }
    let info = MachineInfo {
        accelerator: accel.to_string(),
        cpus: config.cpus,
        memory_mib: config.memory_mib,
        disk_gib: config.disk_gib,
        kernel: boot.kernel_version.clone(),
        started_at: epoch,
        qemu_pid: 0,
        supervisor_pid: 0,
        shares: shares.shared,
        unshared: shares.unshared,
    };
    Ok((q.command(), info))
}

/// The kernel's command line is 2048 bytes on x86, its end included.
const MAX_CMDLINE: usize = 2047;

/// `config`'s shares split into the host folders that exist (shared) and
/// the ones that do not (skipped, and said so on the console).
pub fn host_shares(config: &VmConfig, config_path: &Path) -> Shares {
    let (shared, unshared) = config.shares().into_iter().partition(|p| p.is_dir());
    Shares {
        shared,
        unshared,
        config: Some(config_path.to_path_buf()),
        cache: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_share_missing_on_the_host_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path().join("here");
        std::fs::create_dir(&here).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let gone = dir.path().join("gone");
        let config = VmConfig {
            shares: [&here, &gone, &file, &here.join("inner")]
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            ..VmConfig::default()
        };
        let shares = host_shares(&config, Path::new("/v/vm-config.json"));
        assert_eq!(shares.shared, [here]);
        assert_eq!(shares.unshared, [gone, file]);
        assert_eq!(shares.config, Some(PathBuf::from("/v/vm-config.json")));
    }
}
