//! The page, built from `dashboard/` by `build.rs` and embedded in the
//! binary, so that `servin dashboard` needs nothing else installed.

include!(concat!(env!("OUT_DIR"), "/dashboard_files.rs"));

/// The file served at `path` (`/` is the page itself), with its type.
pub fn find(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = if path == "/" { "/index.html" } else { path };
    FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(p, bytes)| (mime(p), *bytes))
}

fn mime(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_scripts_are_embedded() {
        let (mime, page) = find("/").unwrap_or(("", b""));
        assert_eq!(mime, "text/html; charset=utf-8");
        let page = String::from_utf8_lossy(page);
        assert!(page.contains("<script"), "{page}");
        assert!(FILES.iter().any(|(p, _)| p.ends_with(".js")));
        assert_eq!(find("/../Cargo.toml"), None);
    }
}
