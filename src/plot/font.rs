//! A font for plotters' text: plotters' ab_glyph backend has none of its own.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Result};
use plotters::style::FontStyle;

/// Environment variable naming a TTF/OTF font to draw text with.
pub const FONT_ENV: &str = "THPBENCH_FONT";

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", // Debian, Ubuntu: fonts-dejavu-core
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf", // Fedora
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf", // Arch
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
];

const FONT_DIRS: &[&str] = &["/usr/share/fonts", "/usr/local/share/fonts"];

/// Any TrueType/OpenType font under `dir`, preferring upright sans faces.
fn scan_fonts(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && depth > 0 {
            scan_fonts(&p, depth - 1, found);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| x.eq_ignore_ascii_case("ttf") || x.eq_ignore_ascii_case("otf"))
        {
            found.push(p);
        }
    }
}

fn find_font() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(FONT_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "{FONT_ENV}={}: no such font file; point it at a .ttf or .otf file",
                path.display()
            );
        }
        return Ok(path);
    }
    if let Some(p) = FONT_CANDIDATES.iter().map(Path::new).find(|p| p.is_file()) {
        return Ok(p.to_path_buf());
    }
    let mut found = Vec::new();
    for dir in FONT_DIRS {
        scan_fonts(Path::new(dir), 4, &mut found);
    }
    let score = |p: &PathBuf| {
        let name = p
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().to_lowercase());
        let mut s = 0;
        for bad in ["bold", "italic", "oblique", "mono", "light", "condensed"] {
            if name.contains(bad) {
                s += 1;
            }
        }
        if !name.contains("sans") {
            s += 1;
        }
        s
    };
    found.sort_by_key(|p| (score(p), p.clone()));
    found.into_iter().next().ok_or_else(|| {
        anyhow!(
            "no TrueType font found to draw text with (looked in {} and {}); install one (Debian: apt-get install fonts-dejavu-core) or set {FONT_ENV}=/path/to/font.ttf",
            FONT_CANDIDATES[0],
            FONT_DIRS.join(", ")
        )
    })
}

/// Registers a font as plotters' `sans-serif` once per process (plotters' ab_glyph
/// backend has no fonts of its own).
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    let outcome = REGISTERED.get_or_init(|| {
        let path = find_font().map_err(|e| format!("{e:#}"))?;
        let bytes =
            std::fs::read(&path).map_err(|e| format!("reading font {}: {e}", path.display()))?;
        // plotters keeps fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        for style in [FontStyle::Normal, FontStyle::Bold] {
            plotters::style::register_font("sans-serif", style, bytes).map_err(|_| {
                format!(
                    "{} is not a usable TrueType/OpenType font; set {FONT_ENV} to another",
                    path.display()
                )
            })?;
        }
        Ok(path)
    });
    outcome.as_ref().map(|_| ()).map_err(|e| anyhow!("{e}"))
}
