//! QR codes in the terminal, two module rows per text line.

/// Renders a `width × width` module matrix (1 = dark) with a 4-module quiet zone.
/// Light modules are drawn as blocks, so the code reads dark-on-light on the usual
/// dark terminal background.
pub fn render_matrix(width: u32, modules: &[u8]) -> String {
    let w = i64::from(width);
    let dark = |x: i64, y: i64| -> bool {
        if x < 0 || y < 0 || x >= w || y >= w {
            return false;
        }
        usize::try_from(y * w + x)
            .ok()
            .and_then(|i| modules.get(i))
            .is_some_and(|m| *m == 1)
    };
    const QUIET: i64 = 4;
    let mut out = String::new();
    let mut y = -QUIET;
    while y < w + QUIET {
        for x in -QUIET..w + QUIET {
            let (top, bottom) = (!dark(x, y), !dark(x, y + 1) && y + 1 < w + QUIET);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    out
}

/// Renders `text` as a QR code (error correction M), for daemons that do not serve
/// `GetQrMatrix`.
pub fn render_text(text: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)?;
    let width = u32::try_from(code.width())?;
    let modules: Vec<u8> = code
        .to_colors()
        .into_iter()
        .map(|c| u8::from(c == qrcode::Color::Dark))
        .collect();
    Ok(render_matrix(width, &modules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_renders_with_its_quiet_zone() {
        // 1×1 dark module: 9×9 with the quiet zone, 5 text lines.
        let s = render_matrix(1, &[1]);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines.iter().all(|l| l.chars().count() == 9));
        // Row pair (4, 5) holds the dark module at x = 4: top dark, bottom light.
        assert_eq!(lines[2].chars().nth(4), Some('▄'));
        assert_eq!(lines[0], "█████████");
    }

    #[test]
    fn text_renders_a_code() {
        let s = render_text("http://127.0.0.1/wallet/x").unwrap();
        assert!(s.contains('█') && s.contains(' '));
    }
}
