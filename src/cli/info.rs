//! `servin info`.

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Show the engine's mode, version, state root, runtime and storage
///
/// Starts the engine when none answers. Takes `--format json`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(cli: &Cli, _args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let info = engine.info()?;
    let servin = engine.servin_info()?;
    if format == Format::Json {
        let out = serde_json::json!({ "docker": info, "servin": servin });
        return ui::data(&serde_json::to_string_pretty(&out)?);
    }
    let s = |k: &str| servin.get(k).map(value).unwrap_or_default();
    let storage = servin.get("storage").cloned().unwrap_or_default();
    let st = |k: &str| storage.get(k).map(value).unwrap_or_default();
    let rt = servin.get("runtime").cloned().unwrap_or_default();
    let runtime = match (rt.get("name"), rt.get("error")) {
        (Some(name), _) => {
            let version = rt.get("version").map(value).unwrap_or_default();
            format!("{} ({version})", value(name))
        }
        (None, Some(why)) => format!("none: {}", value(why)),
        (None, None) => value(&rt),
    };
    let containers = servin.get("containers").cloned().unwrap_or_default();
    let ct = |k: &str| containers.get(k).map(value).unwrap_or_default();
    let mut out = vec![
        format!("Engine:        {}", engine.address()),
        format!(
            "Mode:          {}",
            servin::vm::Mode::from_env().map_or_else(|_| s("mode"), |m| m.as_str().to_string())
        ),
        format!("Version:       {} (API {})", s("version"), s("api_version")),
        format!("State root:    {}", s("root")),
        format!("Runtime:       {runtime}"),
        format!("Init:          {}", s("init")),
        format!("Containers:    {} ({} running)", ct("total"), ct("running")),
        format!("Pid:           {}", s("pid")),
        format!("Uptime:        {}s", s("uptime_seconds")),
        format!("Storage:       {}", st("driver")),
        format!("  Images:      {}", st("images")),
        format!(
            "  Blobs:       {} ({})",
            st("blobs"),
            human_size(
                storage
                    .get("blob_bytes")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0)
            )
        ),
        format!("  Snapshots:   {}", st("snapshots")),
    ];
    if let Some(k) = &info.kernel_version {
        out.push(format!("Kernel:        {k}"));
    }
    if let (Some(os), Some(arch)) = (&info.operating_system, &info.architecture) {
        out.push(format!("Host:          {os} ({arch})"));
    }
    if let Some(n) = info.ncpu {
        out.push(format!("CPUs:          {n}"));
    }
    if let Some(m) = info.mem_total {
        out.push(format!("Memory:        {}", human_size(m)));
    }
    ui::data(&out.join("\n"))
}

fn value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// `1.2MB`-style sizes, decimal like docker's.
pub fn human_size(bytes: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    let n = format!("{v:.2}");
    let n = n.trim_end_matches('0').trim_end_matches('.');
    format!("{n}{}", units[i])
}
