//! PNG output: SVG documents rendered to pixels with `resvg`, using fonts bundled in the crate.
//!
//! Every chart is first drawn as SVG (see [`super::plot`]); a `.png` path renders that SVG with
//! `resvg` (pure Rust: `usvg` parses and lays out text, `tiny-skia` rasterises, `png` encodes).
//! Text uses subsets of DejaVu Sans and DejaVu Sans Mono compiled into the library
//! (`report/fonts/`, Latin, Greek, punctuation, arrows and mathematical operators; licence in
//! `report/fonts/LICENSE`), so a PNG looks the same on every machine and needs no system font,
//! font configuration or C library. The SVG's generic families map to them: `sans-serif` to
//! DejaVu Sans and `monospace` to DejaVu Sans Mono.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use resvg::tiny_skia::{self, Pixmap, Transform};
use resvg::usvg::{self, fontdb};

use super::write_atomic;
use crate::error::{Error, Result};

/// DejaVu Sans, subset (see the module docs).
const SANS: &[u8] = include_bytes!("fonts/DejaVuSans-subset.ttf");
/// DejaVu Sans Mono, subset.
const MONO: &[u8] = include_bytes!("fonts/DejaVuSansMono-subset.ttf");

/// Family name of the bundled proportional font; SVG `sans-serif` resolves to it.
pub const SANS_FAMILY: &str = "DejaVu Sans";
/// Family name of the bundled monospaced font; SVG `monospace` resolves to it.
pub const MONO_FAMILY: &str = "DejaVu Sans Mono";

/// The font database: only the bundled fonts, loaded once per process.
fn fonts() -> Arc<fontdb::Database> {
    static DB: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = fontdb::Database::new();
        db.load_font_data(SANS.to_vec());
        db.load_font_data(MONO.to_vec());
        db.set_sans_serif_family(SANS_FAMILY);
        db.set_monospace_family(MONO_FAMILY);
        // Other generic names a document might use fall back to the same faces.
        db.set_serif_family(SANS_FAMILY);
        db.set_cursive_family(SANS_FAMILY);
        db.set_fantasy_family(SANS_FAMILY);
        Arc::new(db)
    })
    .clone()
}

/// Whether `path` names a PNG file (extension `.png`, any case).
pub fn is_png(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

/// An error of drawing the picture for `path` (not of the file system, but reported alike).
pub(crate) fn draw_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        cause: std::io::Error::other(format!("could not draw the picture: {what}")),
    }
}

/// Parses an SVG document with the bundled fonts.
pub(crate) fn parse_svg(svg: &str, path: &Path) -> Result<usvg::Tree> {
    let opt = usvg::Options {
        font_family: SANS_FAMILY.to_string(),
        fontdb: fonts(),
        ..usvg::Options::default()
    };
    usvg::Tree::from_str(svg, &opt).map_err(|e| draw_error(path, e))
}

/// A white pixmap of `width × height` pixels.
pub(crate) fn white_pixmap(width: u32, height: u32, path: &Path) -> Result<Pixmap> {
    let mut pixmap = Pixmap::new(width.max(1), height.max(1))
        .ok_or_else(|| draw_error(path, format!("a {width}×{height} image is too large")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    Ok(pixmap)
}

/// Draws `tree` over `pixmap`, scaled by `scale`.
pub(crate) fn render_onto(tree: &usvg::Tree, pixmap: &mut Pixmap, scale: f32) {
    resvg::render(
        tree,
        Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
}

/// Encodes a pixmap as PNG bytes.
pub(crate) fn encode_png(pixmap: &Pixmap, path: &Path) -> Result<Vec<u8>> {
    pixmap.encode_png().map_err(|e| draw_error(path, e))
}

/// Renders the SVG document `svg` to PNG bytes, `scale` pixels per SVG unit, on a white
/// background. `path` only names the picture in error messages.
///
/// # Errors
/// [`Error::Io`] when the document cannot be parsed or the image would be too large.
pub fn svg_to_png(svg: &str, scale: f32, path: &Path) -> Result<Vec<u8>> {
    let tree = parse_svg(svg, path)?;
    let size = tree.size();
    let w = (size.width() * scale).ceil() as u32;
    let h = (size.height() * scale).ceil() as u32;
    let mut pixmap = white_pixmap(w, h, path)?;
    render_onto(&tree, &mut pixmap, scale);
    encode_png(&pixmap, path)
}

/// Writes the SVG document `svg` to `path` atomically: as PNG (rendered at 1 pixel per SVG
/// unit) when the path ends in `.png`, as the SVG text otherwise.
///
/// # Errors
/// [`Error::Io`] when the picture cannot be rendered or the file cannot be written.
pub fn write_svg_or_png(path: &Path, svg: &str) -> Result<()> {
    if is_png(path) {
        let png = svg_to_png(svg, 1.0, path)?;
        write_atomic(path, &png)
    } else {
        write_atomic(path, svg.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a PNG's width and height from its header.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        (w, h)
    }

    #[test]
    fn text_is_drawn_with_the_bundled_fonts() {
        let path = Path::new("t.png");
        let blank = r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"></svg>"#;
        let text = r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">
            <text x="4" y="28" font-family="sans-serif" font-size="20">2×200 ≈ σ</text></svg>"#;
        let mono = r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">
            <text x="4" y="28" font-family="monospace" font-size="20">ROMEO:</text></svg>"#;
        let a = svg_to_png(blank, 1.0, path).unwrap();
        assert_eq!(png_size(&a), (120, 40));
        for doc in [text, mono] {
            let tree = parse_svg(doc, path).unwrap();
            let mut pixmap = white_pixmap(120, 40, path).unwrap();
            render_onto(&tree, &mut pixmap, 1.0);
            let dark = pixmap.pixels().iter().filter(|p| p.red() < 128).count();
            assert!(dark > 50, "text left {dark} dark pixels");
        }
        let b = svg_to_png(text, 2.0, path).unwrap();
        assert_eq!(png_size(&b), (240, 80));
    }

    #[test]
    fn png_paths_are_recognised() {
        assert!(is_png(Path::new("a/b.png")));
        assert!(is_png(Path::new("B.PNG")));
        assert!(!is_png(Path::new("b.svg")));
        assert!(!is_png(Path::new("png")));
    }

    #[test]
    fn bad_svg_is_an_error() {
        let err = svg_to_png("<svg", 1.0, Path::new("x.png")).unwrap_err();
        assert!(err.to_string().contains("could not draw"), "{err}");
    }
}
