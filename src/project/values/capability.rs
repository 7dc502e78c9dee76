//! Linux capability names for `cap_add` / `cap_drop`.

/// Every Linux capability, in kernel order (0 to 40), without `CAP_`.
pub const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Normalises a capability name: any case, with or without `CAP_`
/// (`"cap_net_admin"` → `"NET_ADMIN"`). `"ALL"` is accepted. An unknown name
/// is an error suggesting the closest known one.
pub fn normalize_capability(input: &str) -> Result<String, String> {
    let upper = input.trim().to_ascii_uppercase();
    if upper.is_empty() {
        return Err("empty capability; use a name like NET_ADMIN or ALL".to_string());
    }
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if name == "ALL" || CAPABILITIES.contains(&name) {
        return Ok(name.to_string());
    }
    let best = CAPABILITIES
        .iter()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    Err(match best {
        Some((_, suggestion)) => {
            format!("unknown capability \"{input}\"; did you mean {suggestion}?")
        }
        None => format!(
            "unknown capability \"{input}\"; use a Linux capability like NET_ADMIN, SYS_PTRACE or CHOWN, or ALL"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_known_names() {
        let cases: &[(&str, &str)] = &[
            ("NET_ADMIN", "NET_ADMIN"),
            ("cap_net_admin", "NET_ADMIN"),
            ("CAP_SYS_TIME", "SYS_TIME"),
            ("Sys_Ptrace", "SYS_PTRACE"),
            ("all", "ALL"),
            ("CAP_ALL", "ALL"),
            (" chown ", "CHOWN"),
            ("checkpoint_restore", "CHECKPOINT_RESTORE"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize_capability(input),
                Ok(expected.to_string()),
                "{input}"
            );
        }
        for capability in CAPABILITIES {
            assert_eq!(normalize_capability(capability), Ok(capability.to_string()));
            assert_eq!(
                normalize_capability(&format!("cap_{}", capability.to_lowercase())),
                Ok(capability.to_string())
            );
        }
    }

    #[test]
    fn rejects_unknown_names() {
        let cases: &[(&str, &str)] = &[
            ("", "empty capability; use a name like NET_ADMIN or ALL"),
            (
                "CAP_",
                "unknown capability \"CAP_\"; use a Linux capability like NET_ADMIN, SYS_PTRACE or CHOWN, or ALL",
            ),
            (
                "NET_ADMN",
                "unknown capability \"NET_ADMN\"; did you mean NET_ADMIN?",
            ),
            (
                "sys_ptrac",
                "unknown capability \"sys_ptrac\"; did you mean SYS_PTRACE?",
            ),
            (
                "SYSADMIN",
                "unknown capability \"SYSADMIN\"; did you mean SYS_ADMIN?",
            ),
            (
                "cap_chwon",
                "unknown capability \"cap_chwon\"; did you mean CHOWN?",
            ),
            (
                "banana",
                "unknown capability \"banana\"; use a Linux capability like NET_ADMIN, SYS_PTRACE or CHOWN, or ALL",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(
                normalize_capability(input),
                Err(message.to_string()),
                "{input}"
            );
        }
    }

    #[test]
    fn list_is_complete_and_unique() {
        let mut sorted = CAPABILITIES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 41);
    }
}
