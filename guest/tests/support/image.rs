//! Builds OCI images (layer tars, configs, manifests, indexes, archives) in
//! memory for the tests, from `busybox-static`.

use std::io::Write;

use servin_guest::image::digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

#[derive(Clone)]
pub enum Entry {
    Dir(&'static str, u32),
    File(&'static str, Vec<u8>, u32),
    FileOwned(&'static str, Vec<u8>, u32, u64, u64),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
    CharDev(&'static str, u32, u32),
    /// A regular file whose name is written raw (may escape).
    RawFile(&'static str, Vec<u8>),
    /// A hardlink whose name and target are written raw.
    RawHardlink(&'static str, &'static str),
    /// A symlink whose name and target are written raw.
    RawSymlink(&'static str, &'static str),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

pub struct Layer {
    pub entries: Vec<Entry>,
    pub comp: Comp,
}

impl Layer {
    pub fn gzip(entries: Vec<Entry>) -> Self {
        Self {
            entries,
            comp: Comp::Gzip,
        }
    }
}

fn raw_name(h: &mut tar::Header, name: &str) {
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
}

fn raw_link(h: &mut tar::Header, name: &str) {
    let field = &mut h.as_old_mut().linkname;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
}

/// An uncompressed tar of `entries`.
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Entry::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data.as_slice()).unwrap();
            }
            Entry::FileOwned(p, data, mode, uid, gid) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*gid);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data.as_slice()).unwrap();
            }
            Entry::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            Entry::Hardlink(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
            Entry::CharDev(p, major, minor) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_size(0);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Entry::RawFile(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                raw_name(&mut h, p);
                h.set_cksum();
                b.append(&h, data.as_slice()).unwrap();
            }
            Entry::RawHardlink(p, target) | Entry::RawSymlink(p, target) => {
                let kind = if matches!(e, Entry::RawHardlink(..)) {
                    tar::EntryType::Link
                } else {
                    tar::EntryType::Symlink
                };
                h.set_entry_type(kind);
                h.set_mode(0o644);
                h.set_size(0);
                raw_name(&mut h, p);
                raw_link(&mut h, target);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn compress(data: &[u8], comp: Comp) -> Vec<u8> {
    match comp {
        Comp::None => data.to_vec(),
        Comp::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(data, 3).unwrap(),
    }
}

pub struct BuiltLayer {
    pub digest: String,
    pub data: Vec<u8>,
    pub media_type: String,
    pub diff_id: String,
}

pub struct Built {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layers: Vec<BuiltLayer>,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub manifest_media_type: String,
}

impl Built {
    /// Config and layers, as (digest, bytes).
    pub fn blobs(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = vec![(self.config_digest.clone(), self.config.clone())];
        out.extend(
            self.layers
                .iter()
                .map(|l| (l.digest.clone(), l.data.clone())),
        );
        out
    }
}

/// Builds an image of `layers` for `arch`; `docker` picks the Docker v2
/// schema 2 media types instead of OCI ones.
pub fn build(layers: &[Layer], arch: &str, docker: bool) -> Built {
    let mut built = Vec::new();
    for l in layers {
        let tar = tar_of(&l.entries);
        let data = compress(&tar, l.comp);
        let media_type = match (docker, l.comp) {
            (true, Comp::Gzip) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            (true, Comp::None) => "application/vnd.docker.image.rootfs.diff.tar",
            (_, Comp::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
            (false, Comp::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (false, Comp::None) => "application/vnd.oci.image.layer.v1.tar",
        };
        built.push(BuiltLayer {
            digest: digest::of(&data),
            diff_id: digest::of(&tar),
            data,
            media_type: media_type.to_string(),
        });
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "created": "2024-01-02T03:04:05Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "Labels": {"test": arch}},
        "rootfs": {"type": "layers", "diff_ids": built.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": [],
    }))
    .unwrap();
    let config_digest = digest::of(&config);
    let (manifest_media_type, config_type) = if docker {
        (
            DOCKER_MANIFEST,
            "application/vnd.docker.container.image.v1+json",
        )
    } else {
        (OCI_MANIFEST, "application/vnd.oci.image.config.v1+json")
    };
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest_media_type,
        "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
        "layers": built.iter().map(|l| serde_json::json!({
            "mediaType": l.media_type, "digest": l.digest, "size": l.data.len()
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    Built {
        manifest_digest: digest::of(&manifest),
        manifest,
        manifest_media_type: manifest_media_type.to_string(),
        config,
        config_digest,
        layers: built,
    }
}

/// An OCI index over `images` with their architectures.
pub fn index(images: &[(&Built, &str)]) -> (Vec<u8>, String) {
    let bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": images.iter().map(|(b, arch)| serde_json::json!({
            "mediaType": b.manifest_media_type,
            "digest": b.manifest_digest,
            "size": b.manifest.len(),
            "platform": {"os": "linux", "architecture": arch},
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    let d = digest::of(&bytes);
    (bytes, d)
}

pub fn busybox() -> Vec<u8> {
    std::fs::read("/bin/busybox").expect("busybox-static is installed")
}

/// A small busybox image: busybox, sh, a few files.
pub fn base_layer() -> Layer {
    Layer::gzip(vec![
        Entry::Dir("bin", 0o755),
        Entry::File("bin/busybox", busybox(), 0o755),
        Entry::Symlink("bin/sh", "busybox"),
        Entry::Dir("etc", 0o755),
        Entry::File("etc/motd", b"base\n".to_vec(), 0o644),
        Entry::Dir("data", 0o755),
        Entry::File("data/old", b"old\n".to_vec(), 0o600),
        Entry::Dir("cache", 0o755),
        Entry::File("cache/a", b"a\n".to_vec(), 0o644),
    ])
}

/// Applets linked to busybox in the container test image.
pub const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "id", "ls", "true", "false", "mkdir", "touch", "grep", "head",
    "wc", "tty", "stty", "env", "hostname", "ps", "kill", "printf", "pwd", "whoami", "yes", "dd",
    "seq", "httpd", "wget", "nproc", "test", "rm", "date", "stat", "tail", "tr", "mount", "dd",
];

/// A busybox image for running containers: applets in /bin, users `root`,
/// `app` (1000:1000, also in group `staff`) and `nobody`.
pub fn container_layer() -> Layer {
    let mut entries = vec![
        Entry::Dir("bin", 0o755),
        Entry::File("bin/busybox", busybox(), 0o755),
        Entry::Dir("etc", 0o755),
        Entry::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n".to_vec(),
            0o644,
        ),
        Entry::File(
            "etc/group",
            b"root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n".to_vec(),
            0o644,
        ),
        Entry::Dir("root", 0o700),
        Entry::Dir("tmp", 0o1777),
        Entry::Dir("home", 0o755),
    ];
    let mut seen = std::collections::HashSet::new();
    for a in APPLETS {
        if *a != "busybox" && seen.insert(*a) {
            let name: &'static str = Box::leak(format!("bin/{a}").into_boxed_str());
            entries.push(Entry::Symlink(name, "busybox"));
        }
    }
    Layer::gzip(entries)
}

/// A three-layer image with a whiteout and an opaque folder.
pub fn layered_image(docker: bool) -> Built {
    build(
        &[
            base_layer(),
            Layer::gzip(vec![
                Entry::Dir("data", 0o755),
                Entry::File("data/.wh.old", vec![], 0o644),
                Entry::File("data/new", b"new\n".to_vec(), 0o644),
            ]),
            Layer {
                entries: vec![
                    Entry::Dir("cache", 0o755),
                    Entry::File("cache/.wh..wh..opq", vec![], 0o644),
                    Entry::File("cache/b", b"b\n".to_vec(), 0o644),
                    Entry::FileOwned("etc/owned", b"x".to_vec(), 0o4750, 1000, 1000),
                ],
                comp: Comp::None,
            },
        ],
        "amd64",
        docker,
    )
}

/// A `docker save` tar in the classic form: `<hex>/layer.tar`, `<config>.json`,
/// `manifest.json` (uncompressed layers).
pub fn docker_save_tar(layers: &[Layer], tag: &str) -> (Vec<u8>, String) {
    let raw: Vec<Layer> = layers
        .iter()
        .map(|l| Layer {
            entries: l.entries.clone(),
            comp: Comp::None,
        })
        .collect();
    let img = build(&raw, "amd64", true);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    };
    let config_name = format!("{}.json", &img.config_digest[7..]);
    add(&config_name, &img.config);
    let mut layer_names = Vec::new();
    for l in &img.layers {
        let name = format!("{}/layer.tar", &l.diff_id[7..]);
        add(&name, &l.data);
        layer_names.push(name);
    }
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name, "RepoTags": [tag], "Layers": layer_names,
    }]))
    .unwrap();
    add("manifest.json", &manifest);
    (b.into_inner().unwrap(), img.config_digest)
}

/// An OCI image layout tar holding `img`, named `name` (a full reference).
pub fn oci_layout_tar(img: &Built, name: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    for (d, data) in img.blobs() {
        add(&format!("blobs/sha256/{}", &d[7..]), &data);
    }
    add(
        &format!("blobs/sha256/{}", &img.manifest_digest[7..]),
        &img.manifest,
    );
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": img.manifest_media_type, "digest": img.manifest_digest, "size": img.manifest.len(),
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "latest"},
        }],
    }))
    .unwrap();
    add("index.json", &index);
    b.into_inner().unwrap()
}
