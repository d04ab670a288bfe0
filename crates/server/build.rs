//! Embeds the browser client: every file under `web/` becomes an entry of `ASSETS` (its path, its media type and
//! its bytes), so that `palomar serve` has nothing to deploy beside its binary and nothing to build with Node.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut table = String::from("&[\n");
    for file in &files {
        let Ok(relative) = file.strip_prefix(&root) else { continue };
        let Some(path) = relative.to_str() else { panic!("{} is not a UTF-8 path", file.display()) };
        let media_type = media_type(file).unwrap_or_else(|| panic!("no media type for {}: add it to build.rs", path));
        writeln!(
            table,
            "    Asset {{ path: {path:?}, media_type: {media_type:?}, bytes: include_bytes!({:?}) }},",
            file.display().to_string()
        )
        .unwrap_or_else(|_| panic!("writing to a String"));
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| panic!("cargo sets OUT_DIR")));
    std::fs::write(out.join("web_assets.rs"), table).unwrap_or_else(|e| panic!("cannot write web_assets.rs: {e}"));
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display())).path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn media_type(file: &Path) -> Option<&'static str> {
    Some(match file.extension()?.to_str()? {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => return None,
    })
}
