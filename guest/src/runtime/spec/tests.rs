//! The specs [`super::build`] and [`super::exec_process`] make, checked
//! against Docker's: the process, mounts, capabilities, namespaces,
//! devices and limits of a container.
#![allow(clippy::unwrap_used)]

use bollard_stubs::models::{
    DeviceMapping, HostConfig, HostConfigCgroupnsModeEnum, MountBindOptions, MountTmpfsOptions,
    MountType, ResourcesUlimits,
};
use serde_json::{Value, json};

use super::capabilities::{ALL_CAPS, DEFAULT_CAPS};
use super::mounts::DEFAULT_SHM;
use super::process::DEFAULT_PATH;
use super::security::MASKED_PATHS;
use super::*;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn image(ep: Option<Vec<&str>>, cmd: Option<Vec<&str>>) -> oci_spec::image::Config {
    let mut c = oci_spec::image::Config::default();
    c.set_entrypoint(ep.map(|v| v.into_iter().map(String::from).collect()));
    c.set_cmd(cmd.map(|v| v.into_iter().map(String::from).collect()));
    c.set_env(Some(vec!["PATH=/bin".to_string(), "A=image".to_string()]));
    c
}

/// This host's capabilities, as the tests checked them before the host
/// became an input.
fn available_caps() -> u64 {
    HostFacts::read(20_000, false).capabilities
}

struct Fixture {
    dir: tempfile::TempDir,
    etc: EtcFiles,
    anon: Vec<(String, PathBuf)>,
    /// This host, devices included (the privileged cases check them).
    host: HostFacts,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\nstaff:x:50:app\naudio:x:29:\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let etc = EtcFiles {
            hosts: dir.path().join("hosts"),
            hostname: dir.path().join("hostname"),
            resolv_conf: dir.path().join("resolv.conf"),
        };
        Self {
            dir,
            etc,
            anon: Vec::new(),
            host: HostFacts::read(20_000, true),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn input_with<'a>(
        &'a self,
        config: &'a ContainerCreateBody,
        img: &'a oci_spec::image::Config,
        root: &'a Path,
        netns: Option<&'a Path>,
        vol: &'a dyn Fn(&str) -> Result<PathBuf>,
    ) -> SpecInput<'a> {
        SpecInput {
            id: ID,
            name: "web",
            config,
            image: Some(img),
            rootfs: root,
            etc: &self.etc,
            init: Some(Path::new("/usr/bin/tini-static")),
            netns,
            volume_path: vol,
            anonymous_volumes: &self.anon,
            host: &self.host,
            links_env: &[],
        }
    }

    fn spec_netns(&self, config: &ContainerCreateBody, netns: Option<&Path>) -> Result<Value> {
        let img = image(None, Some(vec!["sh"]));
        let root = self.root();
        let vols = self.dir.path().join("volumes");
        let vol = move |n: &str| -> Result<PathBuf> {
            if n == "cache" {
                Ok(vols.join(n))
            } else {
                Err(bad(format!("no such volume: {n}")))
            }
        };
        build(&self.input_with(config, &img, &root, netns, &vol))
            .map(|s| serde_json::to_value(&s).unwrap())
    }

    fn spec(&self, config: &ContainerCreateBody) -> Result<Value> {
        self.spec_netns(config, None)
    }

    fn host(&self, hc: HostConfig) -> Result<Value> {
        self.spec(&ContainerCreateBody {
            host_config: Some(hc),
            ..Default::default()
        })
    }

    fn refused(&self, hc: HostConfig) -> String {
        self.host(hc).unwrap_err().to_string()
    }

    fn exec(&self, config: &ContainerCreateBody, exec: &ExecConfig) -> Result<Value> {
        let img = image(None, Some(vec!["sh"]));
        let root = self.root();
        let vol = |n: &str| -> Result<PathBuf> { Err(bad(format!("no such volume: {n}"))) };
        exec_process(&self.input_with(config, &img, &root, None, &vol), exec)
            .map(|p| serde_json::to_value(&p).unwrap())
    }
}

fn strings(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

fn mount_at<'a>(v: &'a Value, dest: &str) -> Option<&'a Value> {
    v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == dest)
}

fn options(v: &Value, dest: &str) -> Vec<String> {
    strings(&mount_at(v, dest).unwrap_or_else(|| panic!("no mount at {dest}"))["options"])
}

fn namespaces(v: &Value) -> Vec<String> {
    v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn process_user_env_workdir_and_init() {
    let f = Fixture::new();
    let config = ContainerCreateBody {
        user: Some("app".to_string()),
        working_dir: Some("/srv/app".to_string()),
        env: Some(vec!["A=mine".to_string(), "B=2".to_string()]),
        tty: Some(true),
        host_config: Some(HostConfig {
            group_add: Some(vec!["audio".into(), "4000".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let v = f.spec(&config).unwrap();
    assert_eq!(
        v["process"]["args"],
        json!(["/sbin/servin-init", "--", "sh"])
    );
    assert_eq!(v["process"]["terminal"], true);
    assert_eq!(
        v["process"]["user"],
        json!({"uid": 1000, "gid": 1000, "additionalGids": [29, 50, 4000]})
    );
    assert_eq!(v["process"]["cwd"], "/srv/app");
    let made = std::fs::metadata(f.root().join("srv/app")).unwrap();
    assert!(made.is_dir(), "the workdir was created");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&made), 1000);
    let env = strings(&v["process"]["env"]);
    assert_eq!(
        env,
        [
            "PATH=/bin",
            "HOSTNAME=0123456789ab",
            "TERM=xterm",
            "A=mine",
            "B=2",
            "HOME=/home/app"
        ]
    );
    assert_eq!(v["hostname"], "0123456789ab");
    let init = mount_at(&v, INIT_PATH).unwrap();
    assert_eq!(init["source"], "/usr/bin/tini-static");
    assert!(strings(&init["options"]).contains(&"ro".to_string()));
    assert_eq!(v["root"]["path"], json!(f.root()));
    assert_eq!(v["linux"]["cgroupsPath"], format!("/servin/{ID}"));

    let v = f
        .spec(&ContainerCreateBody {
            hostname: Some("box".into()),
            env: Some(vec!["PATH=/mine".into(), "HOME=/h".into()]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(v["hostname"], "box");
    assert_eq!(v["process"]["user"], json!({"uid": 0, "gid": 0}));
    assert_eq!(v["process"]["cwd"], "/");
    assert_eq!(v["process"]["terminal"], false);
    assert_eq!(
        strings(&v["process"]["env"]),
        ["PATH=/mine", "HOSTNAME=box", "A=image", "HOME=/h"]
    );
}

#[test]
fn the_default_path_fills_in() {
    let f = Fixture::new();
    let mut img = image(None, Some(vec!["sh"]));
    img.set_env(None);
    img.set_working_dir(Some("/from/image".into()));
    img.set_user(Some("1000".into()));
    let root = f.root();
    let config = ContainerCreateBody::default();
    let vol = |n: &str| -> Result<PathBuf> { Err(bad(n.to_string())) };
    let mut input = f.input_with(&config, &img, &root, None, &vol);
    input.init = None;
    let v = serde_json::to_value(build(&input).unwrap()).unwrap();
    assert_eq!(v["process"]["args"], json!(["sh"]));
    assert!(mount_at(&v, INIT_PATH).is_none());
    assert_eq!(v["process"]["env"][0], format!("PATH={DEFAULT_PATH}"));
    assert_eq!(v["process"]["cwd"], "/from/image");
    assert_eq!(v["process"]["user"]["uid"], 1000, "the image's user");
    assert!(
        f.spec(&ContainerCreateBody {
            working_dir: Some("rel".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string()
        .contains("\"rel\"")
    );
}

#[test]
fn standard_mounts() {
    let f = Fixture::new();
    let v = f.spec(&ContainerCreateBody::default()).unwrap();
    let dests: Vec<String> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/etc/hosts",
            INIT_PATH
        ]
    );
    assert_eq!(mount_at(&v, "/dev").unwrap()["type"], "tmpfs");
    assert!(options(&v, "/sys").contains(&"ro".to_string()));
    assert!(options(&v, "/sys/fs/cgroup").contains(&"ro".to_string()));
    assert!(options(&v, "/dev/shm").contains(&format!("size={DEFAULT_SHM}")));
    let hosts = mount_at(&v, "/etc/hosts").unwrap();
    assert_eq!(hosts["source"], json!(f.etc.hosts));
    assert_eq!(hosts["type"], "bind");
    assert!(!options(&v, "/etc/hosts").contains(&"ro".to_string()));

    let v = f
        .host(HostConfig {
            shm_size: Some(1 << 20),
            readonly_rootfs: Some(true),
            ..Default::default()
        })
        .unwrap();
    assert!(options(&v, "/dev/shm").contains(&"size=1048576".to_string()));
    assert_eq!(v["root"]["readonly"], true);
    assert!(
        options(&v, "/etc/hosts").contains(&"ro".to_string()),
        "read-only root: read-only generated files, as Docker"
    );
    let v = f
        .host(HostConfig {
            ipc_mode: Some("none".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(mount_at(&v, "/dev/shm").is_none());
    assert!(
        f.refused(HostConfig {
            shm_size: Some(-1),
            ..Default::default()
        })
        .contains("-1")
    );
}

#[test]
fn anonymous_volumes_give_way_to_user_mounts() {
    let mut f = Fixture::new();
    let vols = f.dir.path().join("volumes");
    f.anon = vec![
        ("/anon".to_string(), vols.join("a1/_data")),
        ("/m/anon".to_string(), vols.join("a2/_data")),
        ("/cache/".to_string(), vols.join("a3/_data")),
    ];
    let v = f
        .host(HostConfig {
            binds: Some(vec!["cache:/cache:ro".into()]),
            mounts: Some(vec![bollard_stubs::models::Mount {
                typ: Some(MountType::VOLUME),
                target: Some("/m/anon".into()),
                read_only: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        mount_at(&v, "/anon").unwrap()["source"],
        json!(vols.join("a1/_data"))
    );
    assert_eq!(options(&v, "/anon"), ["rbind", "rprivate"]);
    assert_eq!(
        mount_at(&v, "/m/anon").unwrap()["source"],
        json!(vols.join("a2/_data"))
    );
    assert_eq!(options(&v, "/m/anon"), ["rbind", "rprivate", "ro"]);
    assert_eq!(
        mount_at(&v, "/cache").unwrap()["source"],
        json!(vols.join("cache")),
        "the user's volume wins over the image's"
    );
    assert!(mount_at(&v, "/cache/").is_none());
    let err = f
        .host(HostConfig {
            mounts: Some(vec![bollard_stubs::models::Mount {
                typ: Some(MountType::VOLUME),
                target: Some("/elsewhere".into()),
                ..Default::default()
            }]),
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("/elsewhere"), "{err}");
}

#[test]
fn binds_volumes_and_tmpfs() {
    let f = Fixture::new();
    let data = f.data();
    let v = f
        .host(HostConfig {
            binds: Some(vec![
                format!("{data}:/data/ro:ro,z"),
                format!("{data}:/data:rshared"),
                "cache:/cache".into(),
            ]),
            mounts: Some(vec![
                bollard_stubs::models::Mount {
                    typ: Some(MountType::BIND),
                    source: Some(data.clone()),
                    target: Some("/m/bind".into()),
                    read_only: Some(true),
                    bind_options: Some(MountBindOptions {
                        non_recursive: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                bollard_stubs::models::Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some("cache".into()),
                    target: Some("/m/vol".into()),
                    ..Default::default()
                },
                bollard_stubs::models::Mount {
                    typ: Some(MountType::TMPFS),
                    target: Some("/m/tmp".into()),
                    tmpfs_options: Some(MountTmpfsOptions {
                        size_bytes: Some(1 << 20),
                        mode: Some(0o1770),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            tmpfs: Some([("/run".to_string(), "exec,size=64k".to_string())].into()),
            ..Default::default()
        })
        .unwrap();
    let ro = mount_at(&v, "/data/ro").unwrap();
    assert_eq!(ro["source"], json!(data));
    assert_eq!(strings(&ro["options"]), ["rbind", "rprivate", "ro"]);
    assert_eq!(options(&v, "/data"), ["rbind", "rshared"]);
    let dests: Vec<&str> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    let at = |d: &str| dests.iter().position(|x| *x == d).unwrap();
    assert!(at("/data") < at("/data/ro"), "parents first: {dests:?}");
    assert_eq!(
        mount_at(&v, "/cache").unwrap()["source"],
        json!(f.dir.path().join("volumes/cache"))
    );
    assert_eq!(options(&v, "/m/bind"), ["bind", "rprivate", "ro"]);
    assert_eq!(
        mount_at(&v, "/m/vol").unwrap()["source"],
        json!(f.dir.path().join("volumes/cache"))
    );
    assert_eq!(
        options(&v, "/m/tmp"),
        ["nosuid", "nodev", "noexec", "size=1048576", "mode=1770"]
    );
    assert_eq!(options(&v, "/run"), ["nosuid", "nodev", "size=64k"]);

    let e = f.refused(HostConfig {
        binds: Some(vec!["/no/such:/x".into()]),
        ..Default::default()
    });
    assert_eq!(
        e,
        "invalid mount config for type \"bind\": bind source path does not exist: /no/such"
    );
    let e = f.refused(HostConfig {
        mounts: Some(vec![bollard_stubs::models::Mount {
            typ: Some(MountType::BIND),
            source: Some("/no/where".into()),
            target: Some("/x".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    assert!(
        e.contains("bind source path does not exist: /no/where"),
        "{e}"
    );
    assert!(
        f.refused(HostConfig {
            binds: Some(vec!["ghost:/x".into()]),
            ..Default::default()
        })
        .contains("no such volume: ghost")
    );
    assert!(
        f.refused(HostConfig {
            binds: Some(vec![format!("{data}:relative")]),
            ..Default::default()
        })
        .contains("\"relative\"")
    );
    assert!(
        f.refused(HostConfig {
            binds: Some(vec![format!("{data}:/x:bogus")]),
            ..Default::default()
        })
        .contains("\"bogus\"")
    );
    assert!(
        f.refused(HostConfig {
            binds: Some(vec![format!("{data}:/x"), "cache:/x".into()]),
            ..Default::default()
        })
        .contains("duplicate mount point: /x")
    );
    assert!(
        f.refused(HostConfig {
            mounts: Some(vec![bollard_stubs::models::Mount {
                typ: Some(MountType::TMPFS),
                target: Some("/t".into()),
                tmpfs_options: Some(MountTmpfsOptions {
                    size_bytes: Some(-5),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        })
        .contains("-5")
    );
}

#[test]
fn user_mounts_replace_standard_ones() {
    let f = Fixture::new();
    let data = f.data();
    let v = f
        .host(HostConfig {
            binds: Some(vec![format!("{data}:/etc/hosts"), format!("{data}:/dev")]),
            tmpfs: Some([("/dev/shm".to_string(), String::new())].into()),
            ..Default::default()
        })
        .unwrap();
    let hosts: Vec<&Value> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"] == "/etc/hosts")
        .collect();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["source"], json!(data));
    let dev: Vec<&Value> = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["destination"].as_str().unwrap().starts_with("/dev"))
        .collect();
    assert_eq!(dev.len(), 2, "only the user's /dev and /dev/shm: {dev:?}");
}

#[test]
fn capabilities_like_docker() {
    let f = Fixture::new();
    let caps = |add: &[&str], drop: &[&str]| -> Result<Vec<String>> {
        let v = f.host(HostConfig {
            cap_add: Some(add.iter().map(|s| s.to_string()).collect()),
            cap_drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        })?;
        let mut b = strings(&v["process"]["capabilities"]["bounding"]);
        b.sort();
        let mut e = strings(&v["process"]["capabilities"]["effective"]);
        e.sort();
        assert_eq!(b, e);
        assert_eq!(v["process"]["capabilities"]["inheritable"], json!([]));
        Ok(b)
    };
    let mut defaults: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    defaults.sort();
    assert_eq!(caps(&[], &[]).unwrap(), defaults);
    let c = caps(&["sys_ptrace", "CAP_NET_ADMIN"], &["net_raw"]).unwrap();
    assert!(c.contains(&"CAP_SYS_PTRACE".into()) && c.contains(&"CAP_NET_ADMIN".into()));
    assert!(!c.contains(&"CAP_NET_RAW".into()) && c.contains(&"CAP_CHOWN".into()));
    assert_eq!(caps(&[], &["ALL"]).unwrap(), Vec::<String>::new());
    assert_eq!(caps(&["kill"], &["all"]).unwrap(), ["CAP_KILL"]);
    let all_but = caps(&["ALL"], &["SYS_ADMIN"]).unwrap();
    assert!(all_but.contains(&"CAP_SYS_MODULE".into()));
    assert!(
        !all_but.contains(&"CAP_SYS_ADMIN".into()),
        "add ALL still drops"
    );
    assert_eq!(
        caps(&["FLY"], &[]).unwrap_err().to_string(),
        "unknown capability \"FLY\""
    );
    assert!(
        caps(&[], &["CAP_NOPE"])
            .unwrap_err()
            .to_string()
            .contains("CAP_NOPE")
    );
    let missing = ALL_CAPS
        .iter()
        .enumerate()
        .find(|(i, _)| available_caps() >> i & 1 == 0)
        .map(|(_, c)| *c);
    if let Some(missing) = missing {
        let e = caps(&[missing], &[]).unwrap_err().to_string();
        assert!(e.contains(missing) && e.contains("does not hold"), "{e}");
        assert!(!caps(&["ALL"], &[]).unwrap().contains(&missing.to_string()));
    }
}

#[test]
fn privileged_gets_everything() {
    let f = Fixture::new();
    let v = f
        .host(HostConfig {
            privileged: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            ..Default::default()
        })
        .unwrap();
    let caps = strings(&v["process"]["capabilities"]["bounding"]);
    assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()) && caps.len() > 30);
    assert_eq!(v["linux"]["maskedPaths"], json!([]));
    assert_eq!(v["linux"]["readonlyPaths"], json!([]));
    assert_eq!(
        v["linux"]["resources"]["devices"],
        json!([{"allow": true, "type": "a", "access": "rwm"}])
    );
    let devs = v["linux"]["devices"].as_array().unwrap();
    assert!(
        devs.iter().any(|d| d["path"] == "/dev/null"),
        "host devices"
    );
    assert!(!options(&v, "/sys").contains(&"ro".to_string()));
    assert!(!options(&v, "/sys/fs/cgroup").contains(&"ro".to_string()));
}

#[test]
fn masked_readonly_and_devices_by_default() {
    let f = Fixture::new();
    let v = f.spec(&ContainerCreateBody::default()).unwrap();
    let masked = strings(&v["linux"]["maskedPaths"]);
    for p in MASKED_PATHS {
        assert!(masked.contains(&p.to_string()), "{p} not masked");
    }
    assert_eq!(strings(&v["linux"]["readonlyPaths"]), READONLY_PATHS);
    let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
    assert_eq!(
        rules[0],
        json!({"allow": false, "type": "a", "access": "rwm"})
    );
    assert!(
        rules
            .iter()
            .any(|r| r["major"] == 1 && r["minor"] == 3 && r["allow"] == true)
    );
    assert!(v["linux"]["devices"].as_array().is_none_or(Vec::is_empty));

    let v = f
        .host(HostConfig {
            security_opt: Some(vec!["systempaths=unconfined".into()]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(v["linux"]["maskedPaths"], json!([]));
    let v = f
        .host(HostConfig {
            masked_paths: Some(vec!["/proc/mine".into()]),
            readonly_paths: Some(vec![]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(v["linux"]["maskedPaths"], json!(["/proc/mine"]));
    assert_eq!(v["linux"]["readonlyPaths"], json!([]));

    let v = f
        .host(HostConfig {
            devices: Some(vec![DeviceMapping {
                path_on_host: Some("/dev/zero".into()),
                path_in_container: Some("/dev/z".into()),
                cgroup_permissions: Some("r".into()),
            }]),
            device_cgroup_rules: Some(vec!["c 10:229 rwm".into()]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(v["linux"]["devices"][0]["path"], "/dev/z");
    let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
    let n = rules.len();
    assert_eq!(
        rules[n - 2],
        json!({"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"})
    );
    assert_eq!(
        rules[n - 1]["minor"],
        229,
        "fuse allowed by the rule, after the defaults"
    );
    assert!(
        f.refused(HostConfig {
            device_cgroup_rules: Some(vec!["c x rwm".into()]),
            ..Default::default()
        })
        .contains("c x rwm")
    );
}

#[test]
fn security_options() {
    let f = Fixture::new();
    for (opt, want) in [
        ("no-new-privileges", true),
        ("no-new-privileges:true", true),
        ("no-new-privileges=true", true),
        ("no-new-privileges:false", false),
    ] {
        let v = f
            .host(HostConfig {
                security_opt: Some(vec![opt.into()]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(v["process"]["noNewPrivileges"], want, "{opt}");
    }
    let v = f.spec(&ContainerCreateBody::default()).unwrap();
    assert_eq!(v["process"]["noNewPrivileges"], false);
    let v = f
        .host(HostConfig {
            security_opt: Some(vec![
                "seccomp=unconfined".into(),
                "apparmor=unconfined".into(),
                "label=disable".into(),
                "writable-cgroups=true".into(),
            ]),
            ..Default::default()
        })
        .unwrap();
    assert!(!options(&v, "/sys/fs/cgroup").contains(&"ro".to_string()));
    assert!(
        f.refused(HostConfig {
            security_opt: Some(vec!["fly=high".into()]),
            ..Default::default()
        })
        .contains("fly=high")
    );
    assert!(
        f.refused(HostConfig {
            security_opt: Some(vec!["no-new-privileges:maybe".into()]),
            ..Default::default()
        })
        .contains("maybe")
    );
}

#[test]
fn namespaces_and_sysctls() {
    let f = Fixture::new();
    let v = f.spec(&ContainerCreateBody::default()).unwrap();
    let mut want = vec!["mount", "network", "uts", "pid", "ipc"];
    if super::super::cgroup_v2_only() {
        want.push("cgroup");
    }
    assert_eq!(namespaces(&v), want);
    let v = f
        .spec_netns(
            &ContainerCreateBody::default(),
            Some(Path::new("/run/netns/x")),
        )
        .unwrap();
    let net = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "network")
        .unwrap()
        .clone();
    assert_eq!(net["path"], "/run/netns/x");
    let v = f
        .host(HostConfig {
            network_mode: Some("host".into()),
            pid_mode: Some("host".into()),
            ipc_mode: Some("host".into()),
            uts_mode: Some("host".into()),
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(namespaces(&v), ["mount", "cgroup"]);
    assert!(
        v.get("hostname").is_none(),
        "no hostname in the host's UTS namespace"
    );
    assert!(
        f.refused(HostConfig {
            pid_mode: Some("container:abc".into()),
            ..Default::default()
        })
        .contains("container:abc")
    );
    assert!(
        f.refused(HostConfig {
            network_mode: Some("container:abc".into()),
            ..Default::default()
        })
        .contains("container:abc")
    );

    let sysctls = |pairs: &[(&str, &str)], network: Option<&str>| {
        f.host(HostConfig {
            sysctls: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            network_mode: network.map(String::from),
            ..Default::default()
        })
    };
    let v = sysctls(
        &[
            ("net.ipv4.ip_forward", "1"),
            ("kernel.shmmax", "1000"),
            ("fs.mqueue.msg_max", "20"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(v["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
    assert_eq!(v["linux"]["sysctl"]["kernel.shmmax"], "1000");
    let e = sysctls(&[("kernel.pid_max", "1")], None).unwrap_err();
    assert!(e.to_string().contains("kernel.pid_max"));
    let e = sysctls(&[("net.core.somaxconn", "1")], Some("host")).unwrap_err();
    assert!(e.to_string().contains("net.core.somaxconn"), "host network");
    let e = f
        .host(HostConfig {
            privileged: Some(true),
            sysctls: Some([("vm.swappiness".to_string(), "1".to_string())].into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("vm.swappiness"),
        "runc refuses it even then"
    );
}

#[test]
fn resources_and_limits() {
    let f = Fixture::new();
    let v = f
        .host(HostConfig {
            memory: Some(16 << 20),
            memory_reservation: Some(8 << 20),
            nano_cpus: Some(500_000_000),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some(10),
            oom_kill_disable: Some(true),
            oom_score_adj: Some(500),
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("nofile".into()),
                soft: Some(50_000),
                hard: Some(90_000),
            }]),
            ..Default::default()
        })
        .unwrap();
    let r = &v["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], 16 << 20);
    assert_eq!(r["memory"]["reservation"], 8 << 20);
    assert_eq!(r["memory"]["disableOOMKiller"], true);
    assert_eq!(r["cpu"]["quota"], 50_000);
    assert_eq!(r["cpu"]["period"], 100_000);
    assert_eq!(r["cpu"]["shares"], 512);
    assert_eq!(r["cpu"]["cpus"], "0");
    assert_eq!(r["pids"]["limit"], 10);
    assert_eq!(v["process"]["oomScoreAdj"], 500);
    assert_eq!(
        v["process"]["rlimits"],
        json!([{"type": "RLIMIT_NOFILE", "soft": 20_000, "hard": 20_000}]),
        "clamped to the host's hard limit"
    );
    let v = f.spec(&ContainerCreateBody::default()).unwrap();
    assert_eq!(
        v["process"]["rlimits"],
        json!([{"type": "RLIMIT_NOFILE", "soft": 20_000, "hard": 20_000}])
    );
    assert!(v["linux"]["resources"].get("pids").is_none());
    assert!(
        f.refused(HostConfig {
            memory: Some(-1),
            ..Default::default()
        })
        .contains("memory limit -1")
    );
    assert!(
        f.refused(HostConfig {
            memory: Some(10 << 20),
            memory_swap: Some(1 << 20),
            ..Default::default()
        })
        .contains("swap")
    );
    assert!(
        f.refused(HostConfig {
            oom_score_adj: Some(2000),
            ..Default::default()
        })
        .contains("2000")
    );
    assert!(
        f.refused(HostConfig {
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("nproc".into()),
                soft: Some(10),
                hard: Some(1),
            }]),
            ..Default::default()
        })
        .contains("nproc")
    );
}

#[test]
fn unknown_users_are_refused() {
    let f = Fixture::new();
    let e = f
        .spec(&ContainerCreateBody {
            user: Some("ghost".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
    assert!(
        f.host(HostConfig {
            group_add: Some(vec!["nogroup".into()]),
            ..Default::default()
        })
        .unwrap_err()
        .to_string()
        .contains("nogroup")
    );
}

#[test]
fn exec_processes() {
    let f = Fixture::new();
    let config = ContainerCreateBody {
        user: Some("app".into()),
        working_dir: Some("/srv".into()),
        env: Some(vec!["A=container".into(), "B=1".into()]),
        host_config: Some(HostConfig {
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            group_add: Some(vec!["audio".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = f
        .exec(
            &config,
            &ExecConfig {
                cmd: Some(vec!["id".into()]),
                env: Some(vec!["B=exec".into()]),
                tty: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(p["args"], json!(["id"]));
    assert_eq!(
        p["user"],
        json!({"uid": 1000, "gid": 1000, "additionalGids": [29, 50]})
    );
    assert_eq!(p["cwd"], "/srv");
    assert_eq!(p["terminal"], true);
    assert_eq!(p["noNewPrivileges"], true);
    assert_eq!(p["capabilities"]["bounding"], json!([]));
    assert_eq!(
        strings(&p["env"]),
        [
            "PATH=/bin",
            "HOSTNAME=0123456789ab",
            "TERM=xterm",
            "A=container",
            "B=exec",
            "HOME=/home/app"
        ]
    );
    let p = f
        .exec(
            &config,
            &ExecConfig {
                cmd: Some(vec!["sh".into()]),
                user: Some("0:0".into()),
                working_dir: Some("/tmp".into()),
                privileged: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        p["user"],
        json!({"uid": 0, "gid": 0, "additionalGids": [29]})
    );
    assert_eq!(p["cwd"], "/tmp");
    assert!(strings(&p["capabilities"]["bounding"]).contains(&"CAP_SYS_ADMIN".to_string()));
    assert!(!strings(&p["env"]).iter().any(|e| e.starts_with("TERM=")));
    let no_cmd = f.exec(&config, &ExecConfig::default()).unwrap_err();
    assert_eq!(no_cmd.to_string(), "no exec command specified");
    let e = f
        .exec(
            &config,
            &ExecConfig {
                cmd: Some(vec!["id".into()]),
                user: Some("ghost".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("ghost"));
}

#[test]
fn a_terminal_starts_at_the_client_size() {
    let f = Fixture::new();
    let config = ContainerCreateBody {
        tty: Some(true),
        host_config: Some(HostConfig {
            console_size: Some(vec![40, 100]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let v = f.spec(&config).unwrap();
    assert_eq!(
        v["process"]["consoleSize"],
        serde_json::json!({"height": 40, "width": 100})
    );
    let no_tty = ContainerCreateBody {
        host_config: config.host_config.clone(),
        ..Default::default()
    };
    let v = f.spec(&no_tty).unwrap();
    assert!(v["process"]["consoleSize"].is_null());
}
