//! QR images for `codeDetails` entries with an image `displayType`: what Alipay's image
//! host serves for a binding QR (`consult` returns the code value as text *and* as an
//! image URL).

use qrcode::{Color, QrCode};

/// Pixels per module.
const SCALE: usize = 8;
/// Light modules around the code (the QR standard's quiet zone).
const QUIET: usize = 4;

/// A black-on-white greyscale PNG of the QR code for `text`, or `None` when the text
/// does not fit a QR code.
pub(crate) fn png(text: &str) -> Option<Vec<u8>> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    let modules = code.width();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![0xff_u8; side * side];
    for (i, _) in code
        .to_colors()
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == Color::Dark)
    {
        let (x, y) = ((i % modules + QUIET) * SCALE, (i / modules + QUIET) * SCALE);
        for row in y..y + SCALE {
            pixels[row * side + x..row * side + x + SCALE].fill(0);
        }
    }
    let side = u32::try_from(side).ok()?;
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side, side);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().ok()?.write_image_data(&pixels).ok()?;
    Some(out)
}
