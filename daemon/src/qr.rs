//! QR code rendering for `Binding1.GetQrSvg`, `GetQrPng` and `GetQrMatrix`: one
//! [`Qr`] per code value, rendered on demand (nothing is cached: a binding's code is
//! asked for a handful of times).
//!
//! Error correction level M (15 %): what wallet scanners expect of a code shown on a
//! screen, and small enough to stay readable from a sofa at 8 pixels a module.

use qrcode::{Color, EcLevel, QrCode};

/// The light modules around the code that scanners need (ISO/IEC 18004).
pub(crate) const QUIET_ZONE: u32 = 4;

/// The default pixels per module.
pub(crate) const DEFAULT_MODULE_SIZE: u32 = 8;

/// The largest pixels per module accepted.
pub(crate) const MAX_MODULE_SIZE: u32 = 64;

/// Why a code could not be rendered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QrError {
    /// The text does not fit a QR code.
    #[error("the code value does not fit a QR code: {0}")]
    TooLong(qrcode::types::QrError),
    /// The PNG encoder failed (only on memory exhaustion).
    #[error("encoding the PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// A QR code's module matrix.
#[derive(Debug, Clone)]
pub(crate) struct Qr {
    width: u32,
    /// `width × width` modules, row by row, `true` dark.
    dark: Vec<bool>,
}

/// How to draw the code.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// Pixels (PNG) or user units (SVG) per module.
    pub(crate) module_size: u32,
    /// Whether to draw the 4-module quiet zone.
    pub(crate) quiet_zone: bool,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            module_size: DEFAULT_MODULE_SIZE,
            quiet_zone: true,
        }
    }
}

impl Qr {
    /// The code for `text`.
    pub(crate) fn new(text: &str) -> Result<Qr, QrError> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
            .map_err(QrError::TooLong)?;
        let width = u32::try_from(code.width()).expect("a QR code is at most 177 modules wide");
        let dark = code
            .to_colors()
            .into_iter()
            .map(|c| c == Color::Dark)
            .collect();
        Ok(Qr { width, dark })
    }

    /// The width in modules, without the quiet zone.
    pub(crate) fn width(&self) -> u32 {
        self.width
    }

    /// The modules as bytes, `1` dark and `0` light, row by row (`GetQrMatrix`).
    pub(crate) fn matrix(&self) -> Vec<u8> {
        self.dark.iter().map(|&d| u8::from(d)).collect()
    }

    fn is_dark(&self, x: u32, y: u32) -> bool {
        self.dark[(y * self.width + x) as usize]
    }

    /// The code as an SVG document: one path of dark squares on a white rectangle.
    pub(crate) fn svg(&self, style: Style) -> String {
        let margin = if style.quiet_zone { QUIET_ZONE } else { 0 };
        let size = (self.width + 2 * margin) * style.module_size;
        let m = style.module_size;
        let mut path = String::new();
        for y in 0..self.width {
            for x in 0..self.width {
                if self.is_dark(x, y) {
                    let (px, py) = ((x + margin) * m, (y + margin) * m);
                    path.push_str(&format!("M{px} {py}h{m}v{m}h-{m}z"));
                }
            }
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
             version=\"1.1\" width=\"{size}\" height=\"{size}\" viewBox=\"0 0 {size} {size}\" \
             shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" \
             fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>\n"
        )
    }

    /// The code as an 8-bit greyscale PNG.
    pub(crate) fn png(&self, style: Style) -> Result<Vec<u8>, QrError> {
        let margin = if style.quiet_zone { QUIET_ZONE } else { 0 };
        let m = style.module_size;
        let size = (self.width + 2 * margin) * m;
        let mut pixels = vec![255_u8; (size as usize) * (size as usize)];
        for y in 0..self.width {
            for x in 0..self.width {
                if !self.is_dark(x, y) {
                    continue;
                }
                for dy in 0..m {
                    let row = ((y + margin) * m + dy) as usize * size as usize;
                    let start = row + ((x + margin) * m) as usize;
                    pixels[start..start + m as usize].fill(0);
                }
            }
        }
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, size, size);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header()?;
            writer.write_image_data(&pixels)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:1/wallet/authorize?code=abc&matchCode=42";

    #[test]
    fn the_matrix_has_finder_patterns_and_width_squared_modules() {
        let qr = Qr::new(URL).unwrap();
        let w = qr.width();
        assert_eq!((w - 17) % 4, 0, "a QR width is 17 + 4 × version");
        let m = qr.matrix();
        assert_eq!(m.len(), (w * w) as usize);
        // The top-left finder pattern: a dark 7-module ring with a light ring inside.
        for i in 0..7 {
            assert_eq!(m[i as usize], 1);
            assert_eq!(m[(6 * w + i) as usize], 1);
        }
        assert_eq!(m[(w + 1) as usize], 0);
        assert_eq!(m[(3 * w + 3) as usize], 1);
        assert!(m.iter().all(|&b| b <= 1));
    }

    #[test]
    fn png_decodes_to_the_same_modules() {
        let qr = Qr::new(URL).unwrap();
        let style = Style {
            module_size: 3,
            quiet_zone: true,
        };
        let bytes = qr.png(style).unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let size = (qr.width() + 8) * 3;
        assert_eq!((info.width, info.height), (size, size));
        let m = qr.matrix();
        for y in 0..qr.width() {
            for x in 0..qr.width() {
                let px = buf[(((y + 4) * 3 + 1) * size + (x + 4) * 3 + 1) as usize];
                assert_eq!(px == 0, m[(y * qr.width() + x) as usize] == 1, "({x},{y})");
            }
        }
        // The quiet zone is white.
        assert!(buf[..(size * 12) as usize].iter().all(|&p| p == 255));
    }

    #[test]
    fn svg_draws_one_square_per_dark_module() {
        let qr = Qr::new(URL).unwrap();
        let svg = qr.svg(Style {
            module_size: 2,
            quiet_zone: false,
        });
        let dark = qr.matrix().iter().filter(|&&b| b == 1).count();
        assert_eq!(svg.matches('z').count(), dark);
        let size = qr.width() * 2;
        assert!(
            svg.contains(&format!("viewBox=\"0 0 {size} {size}\"")),
            "{svg}"
        );
    }

    #[test]
    fn oversized_text_is_an_error_not_a_panic() {
        let huge = "x".repeat(10_000);
        assert!(matches!(Qr::new(&huge), Err(QrError::TooLong(_))));
    }
}
