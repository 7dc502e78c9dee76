//! The typed Dockerfile: stages, instructions and their operands, kept as
//! written (unexpanded words) so the executor can expand them with the
//! build arguments and environment in effect at each step.

use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The name it was read under (for diagnostics), e.g. `Dockerfile`.
    pub name: String,
    /// Its full text; every span points into it.
    pub source: String,
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// The `# syntax=` directive, if any (always a Docker Dockerfile 1.x frontend).
    pub syntax: Option<String>,
    /// The `ARG`s before the first `FROM`.
    pub global_args: Vec<ArgDecl>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

/// One `FROM` and the instructions up to the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Its position, from 0.
    pub index: usize,
    /// Its name from `AS name`, in lower case (stage names are case-insensitive).
    pub name: Option<String>,
    /// The `FROM` line.
    pub from: FromInstr,
    /// The instructions after `FROM`.
    pub instructions: Vec<Instruction>,
}

/// A `FROM` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromInstr {
    /// The image word as written (expanded with the global args when planned).
    pub image: String,
    /// The image word's span.
    pub image_span: Range<usize>,
    /// `--platform`, as written.
    pub platform: Option<String>,
    /// The span of the whole `FROM` line.
    pub span: Range<usize>,
    /// 1-based line of `FROM`.
    pub line: usize,
}

/// One instruction of a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// Byte span in the Dockerfile, here-documents included.
    pub span: Range<usize>,
    /// 1-based line of its keyword.
    pub line: usize,
    /// The instruction as written, continuation lines joined (for history).
    pub original: String,
    /// What it says.
    pub kind: InstructionKind,
}

/// What an instruction says, its operands unexpanded.
#[derive(Debug, Clone, PartialEq)]
pub enum InstructionKind {
    /// `RUN`.
    Run {
        /// The command (shell form: the text after the flags, continuations joined).
        command: Command,
        /// Here-documents of the command, in order.
        heredocs: Vec<Heredoc>,
        /// `--mount` flags.
        mounts: Vec<RunMount>,
        /// `--network`.
        network: RunNetwork,
    },
    /// `COPY`.
    Copy(CopyInstr),
    /// `ADD`.
    Add(AddInstr),
    /// `ENV`, as (name, value) pairs; both forms (`ENV k v`, `ENV k=v ...`).
    Env(Vec<(String, String)>),
    /// `ARG`.
    Arg(Vec<ArgDecl>),
    /// `WORKDIR`.
    Workdir(String),
    /// `USER`.
    User(String),
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `EXPOSE` ports as written (`80`, `53/udp`, `$PORT`).
    Expose(Vec<String>),
    /// `LABEL` (name, value) pairs.
    Label(Vec<(String, String)>),
    /// `VOLUME` paths (JSON or space form).
    Volume(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `SHELL` (always JSON form).
    Shell(Vec<String>),
    /// `ONBUILD` and the instruction it stores for images built on this one.
    OnBuild(Box<Instruction>),
    /// `MAINTAINER` (deprecated; becomes the image's author).
    Maintainer(String),
}

/// A command of `RUN`, `CMD`, `ENTRYPOINT` or `HEALTHCHECK CMD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Shell form: run with the stage's `SHELL` (`/bin/sh -c` by default).
    Shell(String),
    /// Exec form: a JSON array of strings, run as is.
    Exec(Vec<String>),
}

/// A here-document (`<<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter (`EOF`); for `COPY` and `ADD` also the file name it
    /// becomes in the destination folder.
    pub name: String,
    /// The body, each line ended by `\n`, leading tabs removed for `<<-`.
    pub content: String,
    /// Whether variables in the body are expanded (`false` when the
    /// delimiter was quoted, `<<"EOF"` or `<<'EOF'`).
    pub expand: bool,
    /// `<<-`: leading tabs were stripped.
    pub strip_tabs: bool,
    /// The span of the marker (`<<EOF`).
    pub span: Range<usize>,
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RunNetwork {
    /// The build's default network.
    #[default]
    Default,
    /// No network (loopback only).
    None,
    /// The host's network.
    Host,
}

/// `COPY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyInstr {
    /// Source paths or globs (here-documents are in `heredocs`).
    pub sources: Vec<String>,
    /// Destination.
    pub dest: String,
    /// `--from`: a stage name or index, or an image reference.
    pub from: Option<String>,
    /// The span of the `--from` flag.
    pub from_span: Option<Range<usize>>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod` (octal when literal).
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// Here-documents used as sources: each becomes a file named after its
    /// delimiter.
    pub heredocs: Vec<Heredoc>,
}

/// `ADD`: as [`CopyInstr`] (without `--from`), plus `--checksum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddInstr {
    /// Source paths, globs or URLs.
    pub sources: Vec<String>,
    /// Destination.
    pub dest: String,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--checksum` (`sha256:...`), only for URL sources.
    pub checksum: Option<String>,
    /// Here-documents used as sources.
    pub heredocs: Vec<Heredoc>,
}

/// One name of an `ARG`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default as written (expanded when the `ARG` runs).
    pub default: Option<String>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: turn off the base image's check.
    None,
    /// `HEALTHCHECK [options] CMD command`.
    Cmd {
        /// The check.
        command: Command,
        /// `--interval`.
        interval: Option<Duration>,
        /// `--timeout`.
        timeout: Option<Duration>,
        /// `--start-period`.
        start_period: Option<Duration>,
        /// `--start-interval`.
        start_interval: Option<Duration>,
        /// `--retries`.
        retries: Option<u32>,
    },
}

/// A `RUN --mount`. Values are the words as written: Docker expands them
/// with the build arguments when the step runs (see [`Instruction::expanded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// `type=bind` (the default type): a folder of the context or of `from`.
    Bind {
        /// Where it appears.
        target: String,
        /// Path in the context or in `from` (default: its root).
        source: Option<String>,
        /// A stage or image to take it from (default: the context).
        from: Option<String>,
        /// `rw`: writes allowed (and thrown away).
        readwrite: bool,
    },
    /// `type=cache`: a folder kept between builds.
    Cache {
        /// Where it appears.
        target: String,
        /// Cache id (default: the target).
        id: String,
        /// How concurrent builds share it.
        sharing: CacheSharing,
        /// A stage or image whose folder seeds the cache.
        from: Option<String>,
        /// Folder in `from`.
        source: Option<String>,
        /// File mode of a new cache folder, octal (default `0755`).
        mode: Option<String>,
        /// Owner of a new cache folder.
        uid: Option<String>,
        /// Group of a new cache folder.
        gid: Option<String>,
        /// `ro`.
        readonly: bool,
    },
    /// `type=tmpfs`.
    Tmpfs {
        /// Where it appears.
        target: String,
        /// `size` as written (bytes or with a unit).
        size: Option<String>,
    },
    /// `type=secret`: a secret given to the build, never stored.
    Secret {
        /// Secret id (default: the target's file name).
        id: String,
        /// Where the file appears (default `/run/secrets/<id>`; none when
        /// only `env` is given).
        target: Option<String>,
        /// Fail when the secret is not given.
        required: bool,
        /// File mode, octal (default `0400`).
        mode: Option<String>,
        /// Owner.
        uid: Option<String>,
        /// Group.
        gid: Option<String>,
        /// Also (or only) expose it in this environment variable.
        env: Option<String>,
    },
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CacheSharing {
    /// Concurrent builds use it together.
    #[default]
    Shared,
    /// A concurrent build gets a fresh one.
    Private,
    /// A concurrent build waits.
    Locked,
}
