//! Builds OCI images (layer tars, configs, manifests, indexes, archives) in
//! memory for the tests, from `busybox-static`: the engine's tests push them
//! to a registry or load them, the host's tests import [`seed_image`].
//!
//! Everything is built here rather than pulled so that the tests need no
//! network and every byte of an image is known to the test.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The `sha256:<hex>` digest of `data`, as registries and image stores name blobs.
pub fn digest(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// One entry of a layer tar.
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

/// How a layer is compressed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

/// A layer to build: its entries and its compression.
pub struct Layer {
    pub entries: Vec<Entry>,
    pub comp: Comp,
}

impl Layer {
    /// A gzip-compressed layer of `entries`.
    pub fn gzip(entries: Vec<Entry>) -> Self {
        Self {
            entries,
            comp: Comp::Gzip,
        }
    }

    /// A gzip-compressed layer of one file `path` (mode 0644) holding
    /// `content`.
    pub fn file(path: &'static str, content: &[u8]) -> Self {
        Self::gzip(vec![Entry::File(path, content.to_vec(), 0o644)])
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

/// `data` compressed as `comp` says.
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

/// A built layer: its blob, the blob's digest and media type, and the
/// digest of the uncompressed tar (the config's `diff_id`).
pub struct BuiltLayer {
    pub digest: String,
    pub data: Vec<u8>,
    pub media_type: String,
    pub diff_id: String,
}

/// A built image: config, layers and manifest, each with its digest.
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
    build_with_config(
        layers,
        docker,
        serde_json::json!({
            "created": "2024-01-02T03:04:05Z",
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "Labels": {"test": arch}},
            "history": [],
        }),
    )
}

/// Builds an OCI image for `arch` of one layer holding one file `path`
/// (mode 0644) with `content`.
pub fn one_file(path: &'static str, content: &[u8], arch: &str) -> Built {
    build(&[Layer::file(path, content)], arch, false)
}

/// Builds an image of `layers` whose config is `config` (an object) with
/// its `rootfs` filled in from the layers.
pub fn build_with_config(layers: &[Layer], docker: bool, mut config: serde_json::Value) -> Built {
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
            digest: digest(&data),
            diff_id: digest(&tar),
            data,
            media_type: media_type.to_string(),
        });
    }
    config["rootfs"] = serde_json::json!({
        "type": "layers",
        "diff_ids": built.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = digest(&config);
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
        manifest_digest: digest(&manifest),
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
    let d = digest(&bytes);
    (bytes, d)
}

/// The bytes of the host's static busybox.
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

/// A tar of regular files (path, contents), as image archives hold them.
pub fn files_tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
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
    (
        docker_save_archive(&img.config, &img.layers, tag),
        img.config_digest,
    )
}

/// A `docker save` tar of `config` (the bytes its name is the digest of)
/// and `layers` (uncompressed), tagged `tag`.
pub fn docker_save_archive(config: &[u8], layers: &[BuiltLayer], tag: &str) -> Vec<u8> {
    let config_name = format!("{}.json", &digest(config)[7..]);
    let mut files = vec![(config_name.clone(), config.to_vec())];
    let mut layer_names = Vec::new();
    for l in layers {
        let name = format!("{}/layer.tar", &l.diff_id[7..]);
        files.push((name.clone(), l.data.clone()));
        layer_names.push(name);
    }
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name, "RepoTags": [tag], "Layers": layer_names,
    }]))
    .unwrap();
    files.push(("manifest.json".to_string(), manifest));
    files_tar(&files)
}

/// The files of an OCI image layout holding `img`, named `name` (a full
/// reference; its tag is the layout's `ref.name`).
pub fn oci_layout_files(img: &Built, name: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![(
        "oci-layout".to_string(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    )];
    for (d, data) in img.blobs() {
        files.push((format!("blobs/sha256/{}", &d[7..]), data));
    }
    files.push((
        format!("blobs/sha256/{}", &img.manifest_digest[7..]),
        img.manifest.clone(),
    ));
    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": img.manifest_media_type, "digest": img.manifest_digest, "size": img.manifest.len(),
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
        }],
    }))
    .unwrap();
    files.push(("index.json".to_string(), index));
    files
}

/// An OCI image layout tar holding `img`, named `name` (a full reference).
pub fn oci_layout_tar(img: &Built, name: &str) -> Vec<u8> {
    files_tar(&oci_layout_files(img, name))
}

/// The busybox applets of the host tests' seed image, as its layer names them.
const SEED_APPLETS: &[&str] = &[
    "bin/sh",
    "bin/echo",
    "bin/cat",
    "bin/sleep",
    "bin/tty",
    "bin/id",
    "bin/true",
    "bin/ls",
    "bin/hostname",
    "bin/stty",
    // The wait of `kube generate`'s init containers (`nc -z`).
    "bin/nc",
];

/// Writes an OCI layout holding one image named `name` (busybox-static as
/// `/bin/busybox` and a few applets) into `dir`: the layout as a folder
/// (`dir/layout`, for tests that read its blobs) and as a tar, whose path
/// it returns (`dir/seed.tar`, for `servin image import`).
pub fn seed_image(dir: &Path, name: &str) -> PathBuf {
    seed_image_marked(dir, name, None)
}

/// As [`seed_image`], with `SEED=marker` in the image's environment when
/// given, which makes a different image (another ID and digest).
pub fn seed_image_marked(dir: &Path, name: &str, marker: Option<&str>) -> PathBuf {
    let mut entries = vec![
        Entry::Dir("bin", 0o755),
        Entry::File("bin/busybox", busybox(), 0o755),
    ];
    entries.extend(SEED_APPLETS.iter().map(|a| Entry::Symlink(a, "busybox")));
    let mut env = vec!["PATH=/bin".to_string()];
    if let Some(m) = marker {
        env.push(format!("SEED={m}"));
    }
    let img = build_with_config(
        &[Layer::gzip(entries)],
        false,
        serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": { "Cmd": ["/bin/sh"], "Env": env },
        }),
    );
    let files = oci_layout_files(&img, name);
    let layout = dir.join("layout");
    for (path, data) in &files {
        crate::files::write(&layout.join(path), data);
    }
    let tar = dir.join("seed.tar");
    std::fs::write(&tar, files_tar(&files)).unwrap();
    tar
}
