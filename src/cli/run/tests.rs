#![allow(clippy::unwrap_used)]
use bollard_stubs::models::{ContainerCreateBody, MountType, RestartPolicyNameEnum};
use clap::Parser;

use super::ContainerArgs;
use crate::ui::Failed;

#[derive(Parser)]
struct T {
    #[command(flatten)]
    c: ContainerArgs,
}

fn body(args: &[&str]) -> Result<ContainerCreateBody, Failed> {
    let mut all = vec!["t"];
    all.extend_from_slice(args);
    T::try_parse_from(all).unwrap().c.body()
}

#[test]
fn maps_flags_to_the_create_body() {
    let b = body(&[
        "-e",
        "A=1",
        "-v",
        "/tmp:/x:ro",
        "-w",
        "/w",
        "-u",
        "app",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "20",
        "-t",
        "-i",
        "--restart",
        "on-failure:3",
        "--cap-drop",
        "ALL",
        "--health-cmd",
        "true",
        "--health-interval",
        "2s",
        "--no-init",
        "busybox",
        "sh",
        "-c",
        "echo -n hi",
    ])
    .unwrap();
    let hc = b.host_config.clone().unwrap();
    assert_eq!(b.env.unwrap(), ["A=1"]);
    assert_eq!(hc.binds.unwrap(), ["/tmp:/x:ro"]);
    assert_eq!(b.working_dir.as_deref(), Some("/w"));
    assert_eq!(hc.memory, Some(64 * 1024 * 1024));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.pids_limit, Some(20));
    assert_eq!(hc.init, Some(false));
    assert_eq!(b.tty, Some(true));
    assert_eq!(b.open_stdin, Some(true));
    let rp = hc.restart_policy.unwrap();
    assert_eq!(rp.name, Some(RestartPolicyNameEnum::ON_FAILURE));
    assert_eq!(rp.maximum_retry_count, Some(3));
    assert_eq!(b.healthcheck.unwrap().interval, Some(2_000_000_000));
    assert_eq!(b.cmd.unwrap(), ["sh", "-c", "echo -n hi"]);
    assert_eq!(b.image.as_deref(), Some("busybox"));
}

#[test]
fn volume_flags_split_into_binds_and_anonymous_volumes() {
    let b = body(&[
        "-v",
        "/tmp:/host:ro",
        "-v",
        "data:/data",
        "-v",
        "/scratch",
        "busybox",
    ])
    .unwrap();
    assert_eq!(
        b.host_config.unwrap().binds.unwrap(),
        ["/tmp:/host:ro", "data:/data"]
    );
    assert_eq!(b.volumes.unwrap(), ["/scratch"]);
    for bad in ["relative", ":/x", "data:rel", "a:/b:ro:x"] {
        assert!(
            matches!(body(&["-v", bad, "busybox"]), Err(Failed::Usage(_))),
            "{bad}"
        );
    }
}

#[test]
fn mounts_in_the_long_form() {
    let b = body(&[
        "--mount",
        "type=bind,src=/tmp,dst=/data,readonly",
        "--mount",
        "type=tmpfs,target=/cache,tmpfs-size=1m,tmpfs-mode=1770",
        "--mount",
        "source=cache,target=/v,ro=false",
        "busybox",
    ])
    .unwrap();
    let mounts = b.host_config.unwrap().mounts.unwrap();
    assert_eq!(mounts[0].typ, Some(MountType::BIND));
    assert_eq!(mounts[0].source.as_deref(), Some("/tmp"));
    assert_eq!(mounts[0].target.as_deref(), Some("/data"));
    assert_eq!(mounts[0].read_only, Some(true));
    assert_eq!(mounts[0].tmpfs_options, None);
    assert_eq!(mounts[1].typ, Some(MountType::TMPFS));
    let t = mounts[1].tmpfs_options.clone().unwrap();
    assert_eq!(t.size_bytes, Some(1024 * 1024));
    assert_eq!(t.mode, Some(0o1770));
    assert_eq!(mounts[2].typ, Some(MountType::VOLUME), "Docker's default");
    assert_eq!(mounts[2].read_only, Some(false));
    let b = body(&[
        "--mount",
        "target=/anon",
        "--mount",
        "type=volume,src=data,target=/d,volume-nocopy",
        "busybox",
    ])
    .unwrap();
    let mounts = b.host_config.unwrap().mounts.unwrap();
    assert_eq!(mounts[0].source, None, "an anonymous volume");
    assert_eq!(mounts[0].volume_options, None);
    let nocopy = mounts[1].volume_options.clone().unwrap();
    assert_eq!(nocopy.no_copy, Some(true));
    for bad in [
        "type=bind,target=/x",
        "type=bind,source=/tmp",
        "type=nfs,source=/tmp,target=/x",
        "type=tmpfs,source=/tmp,target=/x",
        "type=tmpfs,target=/x,tmpfs-mode=999",
        "type=bind,source=/tmp,target=/x,tmpfs-size=1m",
        "type=bind,source=/tmp,target=/x,readonly=maybe",
        "type=bind,source=/tmp,target=/x,bind-propagation=shared",
        "type=bind,source=/tmp,target=/x,volume-nocopy",
        "type=volume,target=/x,volume-nocopy=maybe",
        "type,target=/x",
    ] {
        assert!(
            matches!(body(&["--mount", bad, "busybox"]), Err(Failed::Usage(_))),
            "{bad}"
        );
    }
}

#[test]
fn entrypoint_env_and_limits_as_docker_takes_them() {
    let b = body(&[
        "--entrypoint",
        "/bin/my prog",
        "-e",
        "SERVIN_TEST_SURELY_UNSET_VARIABLE",
        "-e",
        "PATH",
        "--pids-limit",
        "-1",
        "--memory-swap",
        "-1",
        "busybox",
    ])
    .unwrap();
    assert_eq!(b.entrypoint.unwrap(), ["/bin/my prog"]);
    let env = b.env.unwrap();
    assert_eq!(env[0], "SERVIN_TEST_SURELY_UNSET_VARIABLE");
    assert_eq!(env[1], format!("PATH={}", std::env::var("PATH").unwrap()));
    let hc = b.host_config.unwrap();
    assert_eq!(hc.pids_limit, Some(-1));
    assert_eq!(hc.memory_swap, Some(-1));
    assert_eq!(
        body(&["--entrypoint", "", "busybox"])
            .unwrap()
            .entrypoint
            .unwrap(),
        [""],
        "an empty entrypoint clears the image's"
    );
    assert!(body(&["busybox"]).unwrap().entrypoint.is_none());
}

#[test]
fn the_command_takes_everything_after_the_image() {
    let b = body(&["busybox", "ls", "-l", "--name", "x", "-e"]).unwrap();
    assert_eq!(b.cmd.unwrap(), ["ls", "-l", "--name", "x", "-e"]);
    assert!(b.env.is_none());
}

#[test]
fn a_named_network_carries_aliases_and_an_address() {
    let b = body(&[
        "--network",
        "back",
        "--network-alias",
        "db",
        "--ip",
        "10.90.0.9",
        "busybox",
    ])
    .unwrap();
    assert_eq!(b.host_config.unwrap().network_mode.as_deref(), Some("back"));
    let eps = b.networking_config.unwrap().endpoints_config.unwrap();
    assert_eq!(
        eps["back"].aliases.as_deref(),
        Some(&["db".to_string()][..])
    );
    assert_eq!(
        eps["back"]
            .ipam_config
            .as_ref()
            .unwrap()
            .ipv4_address
            .as_deref(),
        Some("10.90.0.9")
    );
    assert!(body(&["busybox"]).unwrap().networking_config.is_none());
}

#[test]
fn published_and_exposed_ports_map_like_docker() {
    let b = body(&[
        "-p",
        "127.0.0.1:8080:80",
        "-p",
        "5353:53/udp",
        "-p",
        "9000-9001:90-91",
        "-p",
        "7000-7010:70",
        "-p",
        "443",
        "--expose",
        "6000-6001/udp",
        "-P",
        "busybox",
    ])
    .unwrap();
    let hc = b.host_config.unwrap();
    assert_eq!(hc.publish_all_ports, Some(true));
    let map = hc.port_bindings.unwrap();
    let one = |key: &str| {
        let list = map.get(key).unwrap().as_ref().unwrap();
        assert_eq!(list.len(), 1, "{key}");
        (
            list[0].host_ip.clone().unwrap(),
            list[0].host_port.clone().unwrap(),
        )
    };
    assert_eq!(one("80/tcp"), ("127.0.0.1".into(), "8080".into()));
    assert_eq!(one("53/udp"), (String::new(), "5353".into()));
    assert_eq!(one("90/tcp"), (String::new(), "9000".into()));
    assert_eq!(one("91/tcp"), (String::new(), "9001".into()));
    assert_eq!(one("70/tcp"), (String::new(), "7000-7010".into()));
    assert_eq!(one("443/tcp"), (String::new(), String::new()));
    let exposed = b.exposed_ports.unwrap();
    for key in [
        "80/tcp", "53/udp", "90/tcp", "70/tcp", "443/tcp", "6000/udp", "6001/udp",
    ] {
        assert!(exposed.contains(&key.to_string()), "{key}: {exposed:?}");
    }
    assert!(body(&["-p", "9000-9002:90-91", "busybox"]).is_err());
    assert!(body(&["-p", "x:80", "busybox"]).is_err());
    assert!(body(&["--expose", "http", "busybox"]).is_err());
}

#[test]
fn bad_values_are_usage_errors() {
    for args in [
        &["-m", "lots", "busybox"][..],
        &["--cpus", "many", "busybox"],
        &["--cpus=-1", "busybox"],
        &["--restart", "sometimes", "busybox"],
        &["--ulimit", "nofile", "busybox"],
        &["--network", "bridge", "--network-alias", "x", "busybox"],
        &["--network", "host", "--ip", "10.1.1.1", "busybox"],
        &["--memory-swap", "lots", "busybox"],
        &["--shm-size", "big", "busybox"],
        &["--health-interval", "often", "busybox"],
        &["--stop-signal", "SIGNOPE", "busybox"],
        &["--sysctl", "novalue", "busybox"],
        &["--ulimit", "nofile=a:b", "busybox"],
        &["--log-opt", "max-file=0", "busybox"],
        &["--log-opt", "color=blue", "busybox"],
    ] {
        assert!(matches!(body(args), Err(Failed::Usage(_))), "{args:?}");
    }
    let b = body(&["busybox"]).unwrap();
    assert_eq!(
        b.host_config.unwrap().init,
        Some(true),
        "init is the default"
    );
}

/// The point of one builder: the same container written as `servin run`
/// flags and as a project file gives the same create body, but for the
/// servin labels a project adds and the knobs only `run` sets.
#[test]
fn run_flags_and_a_project_file_give_the_same_body() {
    let toml = r#"
[project]
name = "same"

[containers.web]
image = "nginx:1.27"
command = ["nginx", "-g", "daemon off;"]
entrypoint = ["/docker-entrypoint.sh"]
env = { A = "1" }
workdir = "/srv"
user = "app"
hostname = "web"
ports = ["127.0.0.1:8080:80", "127.0.0.1:5353:53/udp"]
volumes = ["/tmp:/data:ro", { type = "tmpfs", target = "/cache", size = "1m", mode = 1770 }]
healthcheck = { cmd = "curl -f localhost", interval = "5s", timeout = "2s", retries = 4, start_period = "1s" }
restart = "on-failure:3"
resources = { memory = "64m", cpus = 0.5, pids = 100 }
init = false
stop_signal = "SIGINT"
stop_timeout = "20s"
labels = { tier = "front" }
tty = true
cap_add = ["NET_ADMIN"]
cap_drop = ["ALL"]
read_only = true
sysctls = { "net.core.somaxconn" = "1024" }
ulimits = { nofile = { soft = 1024, hard = 2048 }, nproc = 64 }
shm_size = "128m"
expose = [9000]
"#;
    let dir = tempfile::tempdir().unwrap();
    let project = servin::project::load_str(
        &dir.path().join("servin.toml"),
        toml,
        &servin::project::LoadOptions::default(),
    )
    .map_err(|f| f.to_string())
    .unwrap()
    .project;
    let desired = servin::project::desired::desired(&project, &Default::default()).unwrap();
    let mut from_project = desired.containers[0].body.clone();

    let mut from_run = body(&[
        "--entrypoint",
        "/docker-entrypoint.sh",
        "-e",
        "A=1",
        "-w",
        "/srv",
        "-u",
        "app",
        "--hostname",
        "web",
        "-p",
        "127.0.0.1:8080:80",
        "-p",
        "127.0.0.1:5353:53/udp",
        "--mount",
        "type=bind,source=/tmp,target=/data,readonly",
        "--mount",
        "type=tmpfs,target=/cache,tmpfs-size=1m,tmpfs-mode=1770,readonly=false",
        "--health-cmd",
        "curl -f localhost",
        "--health-interval",
        "5s",
        "--health-timeout",
        "2s",
        "--health-retries",
        "4",
        "--health-start-period",
        "1s",
        "--restart",
        "on-failure:3",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "100",
        "--no-init",
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "20",
        "-l",
        "tier=front",
        "-t",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "ALL",
        "--read-only",
        "--sysctl",
        "net.core.somaxconn=1024",
        "--ulimit",
        "nproc=64",
        "--ulimit",
        "nofile=1024:2048",
        "--shm-size",
        "128m",
        "--expose",
        "9000",
        // A project's container joins the project's default network under
        // its service name.
        "--network",
        "same_default",
        "--network-alias",
        "web",
        "docker.io/library/nginx:1.27",
        "nginx",
        "-g",
        "daemon off;",
    ])
    .unwrap();

    // A project adds its servin labels to the container's own.
    let labels = from_project.labels.take().unwrap();
    assert_eq!(labels["tier"], "front");
    assert_eq!(labels["servin.project"], "same");
    assert_eq!(from_run.labels.take().unwrap().len(), 1);
    // `run` always says whether stdin is attached and whether every exposed
    // port is published (`-i`, `-P`); a project file has no key for either.
    for knob in [
        &mut from_run.attach_stdin,
        &mut from_run.open_stdin,
        &mut from_run.stdin_once,
    ] {
        assert_eq!(knob.take(), Some(false));
    }
    let hc = from_run.host_config.as_mut().unwrap();
    assert_eq!(hc.publish_all_ports.take(), Some(false));

    let json = |b: &ContainerCreateBody| serde_json::to_value(b).unwrap();
    assert_eq!(json(&from_run), json(&from_project));
}
