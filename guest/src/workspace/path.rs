//! The rule for a batch's paths: relative, `/`-separated, every component
//! a plain name (not empty, not `.` or `..`, no NUL byte).

/// Checks `path` and returns its components, or says what is wrong with
/// it (the caller names the path).
pub fn components(path: &str) -> Result<Vec<&str>, &'static str> {
    if path.is_empty() {
        return Err("the path is empty");
    }
    if path.starts_with('/') {
        return Err("the path is absolute; batch paths are relative to the workspace");
    }
    if path.contains('\0') {
        return Err("the path holds a NUL byte");
    }
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    for p in &parts {
        match *p {
            "" => return Err("the path has an empty component"),
            "." | ".." => return Err("the path has a `.` or `..` component"),
            _ => {}
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::components;

    #[test]
    fn plain_paths_are_taken() {
        assert_eq!(components("a/b.txt").unwrap(), vec!["a", "b.txt"]);
        assert_eq!(components("dir/").unwrap(), vec!["dir"]);
        assert_eq!(components(".hidden").unwrap(), vec![".hidden"]);
    }

    #[test]
    fn escapes_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\0b",
        ] {
            assert!(components(bad).is_err(), "{bad:?} was taken");
        }
    }
}
