//! The flags of `servin run` and `servin create` that describe the
//! container; [`super::container`] turns them into a normalised container.

/// How a container is made; shared by `run` and `create`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ContainerArgs {
    /// Name the container [default: a random `adjective_noun`]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Set an environment variable (`KEY=VALUE`, or `KEY` to pass this
    /// shell's value, unsetting the image's when this shell has none);
    /// repeat for more
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file of `KEY=VALUE` lines
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Mount a named volume (`NAME:/path[:ro]`, made when missing), a host
    /// folder or file (`/host/path:/path[:ro]`), or a new anonymous volume
    /// (`/path`, removed with the container by `rm -v` and `--rm`); repeat
    /// for more
    #[arg(short = 'v', long = "volume", value_name = "[SRC:]DST[:OPTS]")]
    pub volume: Vec<String>,
    /// Mount in Docker's long form, e.g.
    /// `type=bind,source=/src,target=/app,readonly`,
    /// `type=volume,source=data,target=/data,volume-nocopy` (no source: an
    /// anonymous volume) or `type=tmpfs,target=/cache,tmpfs-size=64m`;
    /// repeat for more
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub mount: Vec<String>,
    /// Mount a tmpfs at a path (`/path[:options]`, e.g. `/tmp:size=64m`)
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// The working folder of the command (created when missing)
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Run as this user: `name`, `uid`, `name:group` or `uid:gid`
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,
    /// Replace the image's entrypoint with this program (one word: give
    /// its arguments as the command; `""` clears it)
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Run the init as PID 1, forwarding signals and reaping zombies (the
    /// default)
    #[arg(long, overrides_with = "no_init")]
    pub init: bool,
    /// Run the command itself as PID 1
    #[arg(long = "no-init", overrides_with = "init")]
    pub no_init: bool,
    /// Memory limit, e.g. `256m`, `1g` (at least 6m)
    #[arg(short = 'm', long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Memory plus swap limit (`-1` for no limit) [default: twice --memory]
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU limit, e.g. `0.5` or `2`
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<String>,
    /// Most processes the container may have (`-1` for no limit)
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Give the container a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep standard input open and send this terminal's input to it
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// The container's hostname [default: the first 12 digits of its ID]
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Set a label (`KEY=VALUE`); repeat for more
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Restart policy: `no`, `on-failure[:N]`, `always`, `unless-stopped`
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    /// Add a capability (`NET_ADMIN`, `ALL`, ...)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (`NET_RAW`, `ALL`, ...)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Give every capability and access to all devices
    #[arg(long)]
    pub privileged: bool,
    /// Mount the root filesystem read-only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Add a line to /etc/hosts: `NAME:IP`
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// Set a namespaced sysctl (`net.ipv4.ip_forward=1`)
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// Set a resource limit: `NAME=SOFT[:HARD]` (e.g. `nofile=1024:2048`)
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm, e.g. `128m` [default: 64m]
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Security options: `no-new-privileges`
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// The signal that stops the container [default: SIGTERM]
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL [default: 10]
    #[arg(long = "stop-timeout", value_name = "SECS")]
    pub stop_timeout: Option<i64>,
    /// Health check command, run by a shell
    #[arg(long = "health-cmd", value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Time between health checks, e.g. `30s`
    #[arg(long = "health-interval", value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Time a health check may take, e.g. `30s`
    #[arg(long = "health-timeout", value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Failures in a row that make the container unhealthy [default: 3]
    #[arg(long = "health-retries", value_name = "N")]
    pub health_retries: Option<i64>,
    /// Time after the start when failures do not count, e.g. `10s`
    #[arg(long = "health-start-period", value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Turn off the image's health check
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// The network to join: a network's name or ID, `bridge` (the default
    /// network), `none` (loopback only) or `host` (the host's network)
    #[arg(long, value_name = "NETWORK")]
    pub network: Option<String>,
    /// Another name for the container on its network (not on the default
    /// `bridge` network); repeat for more
    #[arg(long = "network-alias", value_name = "NAME")]
    pub network_alias: Vec<String>,
    /// A fixed IPv4 address on its network (not on the default `bridge`
    /// network)
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// Publish a container port on the host:
    /// `[IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/tcp|udp]`, e.g. `8080:80`,
    /// `127.0.0.1:5353:53/udp`, `8000-8010:80` (the first free host port of
    /// the range) or `80` (a random host port); repeat for more
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "[IP:][HOST:]CONTAINER[/PROTO]"
    )]
    pub publish: Vec<String>,
    /// Publish every exposed port (the image's and `--expose`) on a random
    /// host port
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a container port or range without publishing it (`80`,
    /// `9000-9002/udp`); with `-P` it is published
    #[arg(long, value_name = "PORT[/PROTO]")]
    pub expose: Vec<String>,
    /// Log options: `max-size=SIZE`, `max-file=N`
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// The image, e.g. `busybox:1.36`
    pub image: String,
    /// The command and its arguments [default: the image's]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
