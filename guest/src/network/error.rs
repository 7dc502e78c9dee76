//! What can go wrong with networks, addresses and published ports.

use std::path::PathBuf;

/// A network operation refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A name outside Docker's rule.
    #[error(
        "invalid network name {0:?}: a name has 1 to 128 characters, no '/' or control characters, and does not start with '-' or start or end with white space"
    )]
    InvalidName(String),
    /// `host`, `none` or `bridge`: made by the engine, never by a user.
    #[error("{0} is a pre-defined network and cannot be {1}")]
    Predefined(String, &'static str),
    /// A driver other than bridge.
    #[error("network driver {0:?} is not supported: servin networks use the bridge driver")]
    UnsupportedDriver(String),
    /// A network create setting servin's bridge networks do not have.
    #[error("{0} is not supported by servin's bridge networks")]
    UnsupportedSetting(String),
    /// The name is taken.
    #[error("network with name {name} already exists (ID {id})")]
    NameTaken {
        /// The name asked for.
        name: String,
        /// The network that has it.
        id: String,
    },
    /// An ID prefix that names more than one network.
    #[error("network {0} is ambiguous ({1} matches found on ID prefix)")]
    AmbiguousId(String, usize),
    /// An IPv6 subnet (or gateway) for a network without IPv6. Docker
    /// skips such configs without a word when `EnableIPv6` is false; servin
    /// refuses them, so a subnet asked for is never dropped silently.
    #[error(
        "IPv6 subnet {0} given but IPv6 is not enabled on the network: add --ipv6 (EnableIPv6: true)"
    )]
    Ipv6Disabled(String),
    /// `EnableIPv4: false`: an IPv6-only network.
    #[error("IPv6-only networks are not supported: EnableIPv4 must stay true")]
    Ipv4Required,
    /// More than one IPAM config of a family.
    #[error("only one IPv4 and one IPv6 IPAM config (subnet) per network are supported")]
    SeveralSubnets,
    /// An IP range that does not parse or is not inside its subnet.
    #[error("invalid ip range {range:?}: {why}")]
    InvalidIpRange {
        /// The text given.
        range: String,
        /// What is wrong with it.
        why: String,
    },
    /// An IPv6 address asked for on a network without IPv6.
    #[error(
        "invalid address {ip} for network {network}: the network has no IPv6 (create it with --ipv6)"
    )]
    NoIpv6 {
        /// The address asked for.
        ip: String,
        /// The network's name.
        network: String,
    },
    /// A gateway without its subnet.
    #[error("a gateway needs a subnet: give --subnet too")]
    GatewayWithoutSubnet,
    /// A subnet that does not parse or cannot hold a container.
    #[error("invalid subnet {subnet:?}: {why}")]
    InvalidSubnet {
        /// The text given.
        subnet: String,
        /// What is wrong with it.
        why: String,
    },
    /// A subnet that overlaps one in use.
    #[error("invalid subnet {subnet}: it overlaps {other}, which is already in use on this host")]
    SubnetOverlaps {
        /// The subnet asked for.
        subnet: String,
        /// The subnet in use.
        other: String,
    },
    /// The default pool is full.
    #[error(
        "no free subnet left in the pool {0}: remove unused networks (servin network prune) or give --subnet"
    )]
    PoolExhausted(String),
    /// A gateway that is not a host address of its subnet.
    #[error("invalid gateway {gateway}: {why}")]
    InvalidGateway {
        /// The gateway as given.
        gateway: String,
        /// What is wrong with it.
        why: String,
    },
    /// A container address that cannot be given out.
    #[error("invalid address {ip} for network {network}: not a free host address of {subnet}")]
    InvalidAddress {
        /// The address asked for.
        ip: String,
        /// The network's name.
        network: String,
        /// Its subnet.
        subnet: String,
    },
    /// A container address another container has.
    #[error("address {ip} is already in use on network {network}")]
    AddressInUse {
        /// The address asked for.
        ip: String,
        /// The network's name.
        network: String,
    },
    /// Every address of the subnet is given out.
    #[error("no free address left on network {network} ({subnet})")]
    AddressesExhausted {
        /// The network's name.
        network: String,
        /// Its subnet.
        subnet: String,
    },
    /// Removing a network that containers still use.
    #[error("error while removing network: network {network} {why}")]
    InUse {
        /// The network's name.
        network: String,
        /// Who uses it, in Docker's words.
        why: String,
    },
    /// Another engine held the network lock.
    #[error("another engine held {} for over 10 seconds", .0.display())]
    LockTimeout(PathBuf),
    /// A port protocol other than tcp and udp.
    #[error("unsupported port protocol {0:?} (tcp or udp)")]
    UnsupportedProtocol(String),
    /// A `-p` specification that does not parse.
    #[error("invalid port specification {spec:?}: {why}")]
    InvalidPortSpec {
        /// The specification.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// The host port is held, by another program or container.
    #[error("publish {binding}: the host port is already in use{holder}")]
    PortInUse {
        /// `address:port/protocol`.
        binding: String,
        /// ` by NAME` when the holder is known, else empty.
        holder: String,
    },
    /// The host address of a binding is not one of the host's.
    #[error("publish {0}: the host has no such address")]
    NoSuchHostAddress(String),
    /// Every port of a host range is held.
    #[error("publish {0}: every host port of the range is in use")]
    RangeInUse(String),
    /// The VM's init could not load the kernel modules networks need.
    #[error("the VM's kernel modules for networks (bridge, veth, nftables): {0}")]
    KernelModules(String),
}
