//! The guest's network on QEMU's user-mode network: `lo` up, `eth0` at
//! 10.0.2.15/24 with its default route through 10.0.2.2, and QEMU's DNS
//! proxy (10.0.2.3) in `/etc/resolv.conf`. These addresses are fixed by
//! QEMU's `-netdev user` defaults, so no DHCP client is needed.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rtnetlink::RouteMessageBuilder;

use crate::network::link;

/// The guest's address on QEMU's user network.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// QEMU's gateway (the host's loopback seen from the guest).
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// QEMU's DNS proxy.
pub const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

/// Configures `lo` and `eth0` (waiting up to `timeout` for `eth0` to
/// appear) and writes `/etc/resolv.conf`.
pub async fn configure(timeout: Duration) -> Result<(), String> {
    let h = link::host_connection().map_err(|e| e.full_message())?;
    link::set_up(&h, 1, "lo")
        .await
        .map_err(|e| e.full_message())?;
    let began = Instant::now();
    let index = loop {
        if let Some(i) = link::link_index(&h, "eth0")
            .await
            .map_err(|e| e.full_message())?
        {
            break i;
        }
        if began.elapsed() > timeout {
            return Err(format!(
                "no eth0 after {}s: the virtio network device did not appear",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    link::add_address(&h, index, "eth0", IpAddr::V4(ADDRESS), 24, true)
        .await
        .map_err(|e| e.full_message())?;
    link::set_up(&h, index, "eth0")
        .await
        .map_err(|e| e.full_message())?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(GATEWAY)
        .output_interface(index)
        .build();
    match h.route().add(route).execute().await {
        Ok(()) => {}
        Err(e) if link::errno(&e) == Some(17) => {}
        Err(e) => return Err(format!("add the default route via {GATEWAY}: {e}")),
    }
    std::fs::write("/etc/resolv.conf", format!("nameserver {DNS}\n"))
        .map_err(|e| format!("write /etc/resolv.conf: {e}"))
}
