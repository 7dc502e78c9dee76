//! Network devices and namespaces through netlink (`rtnetlink`): bridges,
//! veth pairs, addresses, routes, and the containers' network namespaces.
//!
//! No `ip` process runs: the engine speaks rtnetlink itself. A netlink
//! socket belongs to the network namespace of the thread that opened it,
//! so a container's namespace is reached by a short-lived thread that
//! enters it (or creates it with `unshare(CLONE_NEWNET)` and bind-mounts it
//! onto a file of the container's folder), opens a socket there and hands
//! it to the engine's runtime.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use crate::error::{Error, Result};

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;

/// The errno of a netlink error, when the kernel sent one.
pub fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn failed(what: String) -> impl FnOnce(rtnetlink::Error) -> Error {
    move |e| Error::Runtime {
        context: what,
        message: match errno(&e) {
            Some(n) => std::io::Error::from_raw_os_error(n).to_string(),
            None => e.to_string(),
        },
    }
}

/// Opens a netlink connection in the calling thread's network namespace;
/// its socket is driven by `rt`.
fn connect(rt: &tokio::runtime::Handle) -> Result<Handle> {
    let _entered = rt.enter();
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| Error::Runtime {
        context: "open a netlink socket".to_string(),
        message: e.to_string(),
    })?;
    rt.spawn(conn);
    Ok(handle)
}

/// A netlink connection in the engine's own network namespace.
pub fn host_connection() -> Result<Handle> {
    connect(&tokio::runtime::Handle::current())
}

/// A netlink connection inside a container's namespace, and the namespace.
pub struct NsLink {
    /// Netlink in the container's namespace.
    pub handle: Handle,
    /// The namespace itself (for moving devices into it).
    pub fd: OwnedFd,
}

/// Runs `f` on a fresh thread (whose namespace changes die with it) and
/// waits for it without blocking the runtime.
async fn on_thread<T: Send + 'static>(
    what: String,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("servin-netns".to_string())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| Error::Runtime {
            context: what.clone(),
            message: format!("start a thread: {e}"),
        })?;
    rx.await.unwrap_or_else(|_| {
        Err(Error::Runtime {
            context: what,
            message: "the namespace thread died".to_string(),
        })
    })
}

/// Creates a network namespace kept alive by a bind mount on `path` (a
/// new empty file) and opens netlink inside it.
pub async fn create_netns(path: &Path) -> Result<NsLink> {
    let rt = tokio::runtime::Handle::current();
    let path = path.to_path_buf();
    on_thread(
        format!("create the network namespace {}", path.display()),
        move || {
            // `unshare` is deprecated in rustix for the hazards of
            // CLONE_FILES; CLONE_NEWNET alone changes only this thread's
            // network namespace, and the thread ends right after.
            #[allow(deprecated)]
            rustix::thread::unshare(rustix::thread::UnshareFlags::NEWNET)
                .map_err(|e| Error::io("unshare the network namespace for", &path)(e.into()))?;
            File::create(&path).map_err(Error::io("create", &path))?;
            if let Err(e) = rustix::mount::mount_bind("/proc/thread-self/ns/net", &path) {
                let _ = std::fs::remove_file(&path);
                return Err(Error::io("bind-mount the network namespace on", &path)(
                    e.into(),
                ));
            }
            let fd = File::open("/proc/thread-self/ns/net")
                .map_err(Error::io("open", Path::new("/proc/thread-self/ns/net")))?;
            let handle = connect(&rt)?;
            Ok(NsLink {
                handle,
                fd: fd.into(),
            })
        },
    )
    .await
}

/// Opens netlink inside the namespace bind-mounted on `path`.
pub async fn enter_netns(path: &Path) -> Result<NsLink> {
    let rt = tokio::runtime::Handle::current();
    let path = path.to_path_buf();
    on_thread(
        format!("enter the network namespace {}", path.display()),
        move || {
            let ns = File::open(&path).map_err(Error::io("open", &path))?;
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map_err(|e| Error::io("enter the network namespace", &path)(e.into()))?;
            let handle = connect(&rt)?;
            Ok(NsLink {
                handle,
                fd: ns.into(),
            })
        },
    )
    .await
}

/// Unmounts and removes a namespace file; a missing one is fine. The
/// namespace itself goes when its last process does.
pub fn remove_netns(path: &Path) -> Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT => {}
        Err(e) => return Err(Error::io("unmount the network namespace", path)(e.into())),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path)(e)),
    }
}

/// The index of the link named `name`, if there is one.
pub async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(failed(format!("look up the link {name}"))(e)),
    }
}

/// Deletes the link named `name`; a missing one is fine.
pub async fn delete_link(h: &Handle, name: &str) -> Result<()> {
    let Some(index) = link_index(h, name).await? else {
        return Ok(());
    };
    match h.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
        Err(e) => Err(failed(format!("delete the link {name}"))(e)),
    }
}

/// Gives the link `index` (named `name`) the address `address/prefix`;
/// one it has already is fine. IPv6 addresses skip duplicate address
/// detection (`nodad`, as Docker's): the engine hands each one out once,
/// and a tentative address could not be used for the first seconds.
pub async fn add_address(
    h: &Handle,
    index: u32,
    name: &str,
    address: IpAddr,
    prefix: u8,
    existing_ok: bool,
) -> Result<()> {
    let mut req = h.address().add(index, address, prefix);
    if address.is_ipv6() {
        let msg = req.message_mut();
        msg.header.flags = AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if existing_ok && errno(&e) == Some(EEXIST) => Ok(()),
        Err(e) => Err(failed(format!(
            "give {name} the address {address}/{prefix}"
        ))(e)),
    }
}

/// Makes sure the bridge `name` exists, is up and holds `gateway/prefix`
/// (and the IPv6 gateway `gateway6/prefix`, when given).
pub async fn ensure_bridge(
    h: &Handle,
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
    ipv6: Option<(Ipv6Addr, u8)>,
) -> Result<u32> {
    let index = match link_index(h, name).await? {
        Some(i) => i,
        None => {
            match h.link().add(LinkBridge::new(name).build()).execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(EEXIST) => {}
                Err(e) => return Err(failed(format!("create the bridge {name}"))(e)),
            }
            link_index(h, name).await?.ok_or_else(|| Error::Runtime {
                context: format!("create the bridge {name}"),
                message: "the bridge vanished right after it was made".to_string(),
            })?
        }
    };
    let what = format!("the bridge {name}");
    add_address(h, index, &what, gateway.into(), prefix, true).await?;
    if let Some((gateway6, prefix6)) = ipv6 {
        add_address(h, index, &what, gateway6.into(), prefix6, true).await?;
    }
    set_up(h, index, name).await?;
    Ok(index)
}

/// Brings the link `index` (named `name`) up.
pub async fn set_up(h: &Handle, index: u32, name: &str) -> Result<()> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(failed(format!("bring up the link {name}")))
}

/// One container interface to make.
pub struct Veth<'a> {
    /// The host-side name (`sv<12 hex>`).
    pub host_name: &'a str,
    /// The bridge's index.
    pub bridge: u32,
    /// The name inside the container (`eth0`, `eth1`...).
    pub ifname: &'a str,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Its address.
    pub address: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The default route's gateway, for the interface that carries it.
    pub default_gateway: Option<Ipv4Addr>,
    /// Its IPv6 side, on a network with IPv6.
    pub ipv6: Option<VethIpv6>,
}

/// The IPv6 side of a container interface.
pub struct VethIpv6 {
    /// Its address.
    pub address: Ipv6Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The IPv6 default route's gateway, for the interface that carries
    /// it.
    pub default_gateway: Option<Ipv6Addr>,
}

/// Creates a veth pair with one end on the bridge and the other inside the
/// container's namespace, addressed and up, with the default route when
/// asked.
pub async fn add_veth(host: &Handle, ns: &NsLink, v: &Veth<'_>) -> Result<()> {
    let peer: LinkMessage = LinkMessageBuilder::<LinkUnspec>::new()
        .name(v.ifname.to_string())
        .address(v.mac.to_vec())
        .setns_by_fd(ns.fd.as_raw_fd())
        .build();
    let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(v.host_name.to_string())
        .controller(v.bridge)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    host.link()
        .add(msg)
        .execute()
        .await
        .map_err(failed(format!("create the veth pair {}", v.host_name)))?;
    let inside = async {
        let index = link_index(&ns.handle, v.ifname)
            .await?
            .ok_or_else(|| Error::Runtime {
                context: format!("configure {} in the container", v.ifname),
                message: "the interface did not arrive in the namespace".to_string(),
            })?;
        add_address(
            &ns.handle,
            index,
            v.ifname,
            v.address.into(),
            v.prefix,
            false,
        )
        .await?;
        if let Some(v6) = &v.ipv6 {
            add_address(
                &ns.handle,
                index,
                v.ifname,
                v6.address.into(),
                v6.prefix,
                false,
            )
            .await?;
        }
        set_up(&ns.handle, index, v.ifname).await?;
        let mut routes = Vec::new();
        if let Some(gw) = v.default_gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build();
            routes.push((route, format!("add the default route via {gw}")));
        }
        if let Some(gw) = v.ipv6.as_ref().and_then(|v6| v6.default_gateway) {
            let route = RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build();
            routes.push((route, format!("add the IPv6 default route via {gw}")));
        }
        for (route, what) in routes {
            ns.handle
                .route()
                .add(route)
                .execute()
                .await
                .map_err(failed(what))?;
        }
        Ok(())
    };
    let done: Result<()> = inside.await;
    if done.is_err() {
        let _ = delete_link(host, v.host_name).await;
    }
    done
}

/// Lets a bridge port send frames back out where they came from (its
/// `hairpin_mode`): a container reaching its own published port through
/// the host's address gets the rewritten packets back on the same port.
pub fn set_hairpin(port: &str) -> Result<()> {
    let path = std::path::PathBuf::from(format!("/sys/class/net/{port}/brport/hairpin_mode"));
    match std::fs::read_to_string(&path) {
        Ok(v) if v.trim() == "1" => Ok(()),
        _ => std::fs::write(&path, "1\n").map_err(Error::io("write", &path)),
    }
}

/// Brings up the loopback device of a fresh namespace.
pub async fn loopback_up(ns: &NsLink) -> Result<()> {
    // The loopback device is index 1 in every network namespace.
    set_up(&ns.handle, 1, "lo").await
}
