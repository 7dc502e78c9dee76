//! Container IDs and names.

use crate::error::{ContainerError, Result};
use crate::state;

const ADJECTIVES: &[&str] = &[
    "amber", "brave", "calm", "clever", "cosmic", "crisp", "daring", "eager", "fancy", "gentle",
    "glad", "golden", "happy", "humble", "jolly", "keen", "lively", "lucid", "merry", "mighty",
    "nimble", "noble", "plucky", "proud", "quick", "quiet", "rapid", "shiny", "sleepy", "snappy",
    "sober", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "zesty",
];

const NOUNS: &[&str] = &[
    "badger", "beacon", "breeze", "canyon", "comet", "coral", "falcon", "fern", "fjord", "gecko",
    "glacier", "harbor", "heron", "island", "lagoon", "lantern", "maple", "meadow", "meteor",
    "nebula", "oak", "orbit", "otter", "pebble", "pine", "quartz", "raven", "reef", "river",
    "sparrow", "spruce", "summit", "tundra", "valley", "walrus", "willow", "wombat", "yak",
    "zephyr",
];

/// A new `adjective_noun` name; `taken` says which names are in use.
pub fn random_name(taken: impl Fn(&str) -> bool) -> Result<String> {
    for _ in 0..64 {
        let r = state::random_bytes(3)?;
        let a = ADJECTIVES[usize::from(r[0]) % ADJECTIVES.len()];
        let n = NOUNS[usize::from(r[1]) % NOUNS.len()];
        let name = format!("{a}_{n}");
        if !taken(&name) {
            return Ok(name);
        }
        let numbered = format!("{name}_{}", r[2]);
        if !taken(&numbered) {
            return Ok(numbered);
        }
    }
    Err(ContainerError::NoFreeName.into())
}

/// Checks a user-given name (Docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`) and
/// strips its leading `/`.
pub fn check_name(name: &str) -> Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && bare.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(bare.to_string())
    } else {
        Err(ContainerError::InvalidName(name.to_string()).into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_and_names() {
        let id = state::new_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        let name = random_name(|_| false).unwrap();
        assert!(check_name(&name).is_ok());
        assert_eq!(check_name("/web-1").unwrap(), "web-1");
        assert!(check_name("-web").is_err());
        assert!(check_name("a").is_err());
        assert!(check_name("we b").is_err());
        assert!(random_name(|_| true).is_err());
    }
}
