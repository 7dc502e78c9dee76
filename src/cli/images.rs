//! `servin images`.

use super::info::human_size;
use super::{Cli, Format};
use crate::ui::{self, Failed};

/// List images
///
/// A table of repository, tag, image id, creation time and size, like
/// `docker images`. Takes `--format json` (the Docker API's image summaries).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show all images, intermediate ones too
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let images = engine.images(args.all)?;
    if format == Format::Json {
        return ui::data(&serde_json::to_string_pretty(&images)?);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut rows = vec![[
        "REPOSITORY".to_string(),
        "TAG".to_string(),
        "IMAGE ID".to_string(),
        "CREATED".to_string(),
        "SIZE".to_string(),
    ]];
    for img in &images {
        let id = img.id.strip_prefix("sha256:").unwrap_or(&img.id);
        let id: String = id.chars().take(12).collect();
        let created = ago(now, u64::try_from(img.created).unwrap_or(0));
        let size = human_size(img.size);
        let mut tags: Vec<(String, String)> = img
            .repo_tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .map(|t| {
                let (r, t) = servin::client::images::split_tag(t);
                (r.to_string(), t.unwrap_or("<none>").to_string())
            })
            .collect();
        if tags.is_empty() {
            tags.push(("<none>".to_string(), "<none>".to_string()));
        }
        for (repo, tag) in tags {
            rows.push([repo, tag, id.clone(), created.clone(), size.clone()]);
        }
    }
    ui::table(&rows)
}

/// `5 minutes ago`-style age.
pub fn ago(now: u64, then: u64) -> String {
    if then == 0 {
        return "N/A".to_string();
    }
    let s = now.saturating_sub(then);
    let (n, unit) = match s {
        0..60 => return "Less than a minute ago".to_string(),
        60..3600 => (s / 60, "minute"),
        3600..86_400 => (s / 3600, "hour"),
        86_400..2_592_000 => (s / 86_400, "day"),
        2_592_000..31_536_000 => (s / 2_592_000, "month"),
        _ => (s / 31_536_000, "year"),
    };
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {unit}{plural} ago")
}
