//! Screenshots: a drawn screen (a ratatui `Buffer`) as a self-contained HTML page with its
//! colours and bold/dim text, for slides and bug reports. Written beside the snapshots.

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// Where screenshots go: the directory the dashboard saves snapshots into.
pub const DIR: &str = "saves";

/// The screen as HTML: one `<pre>` on a dark background, a `<span>` per run of cells that
/// share a style.
pub fn html(buf: &Buffer) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>resviz</title></head>\n\
         <body style=\"background:#181818;margin:0\">\n<pre style=\"font-family:'DejaVu Sans \
         Mono',Menlo,Consolas,monospace;font-size:13px;line-height:1.2;color:#cccccc;\
         background:#181818;margin:0;padding:8px\">",
    );
    let area = buf.area;
    for y in area.top()..area.bottom() {
        let mut open: Option<String> = None;
        for x in area.left()..area.right() {
            let cell = &buf[(x, y)];
            let style = css(cell.fg, cell.bg, cell.modifier);
            if open.as_ref() != Some(&style) {
                if open.is_some() {
                    out.push_str("</span>");
                }
                let _ = write!(out, "<span style=\"{style}\">");
                open = Some(style);
            }
            for c in cell.symbol().chars() {
                match c {
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '&' => out.push_str("&amp;"),
                    c => out.push(c),
                }
            }
        }
        if open.is_some() {
            out.push_str("</span>");
        }
        out.push('\n');
    }
    out.push_str("</pre>\n</body></html>\n");
    out
}

/// Write [`html`] of `buf` into `dir` as `screen-N.html` (the first N not taken); its path.
pub fn write(buf: &Buffer, dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let text = html(buf);
    for n in 1.. {
        let path = dir.join(format!("screen-{n}.html"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                io::Write::write_all(&mut f, text.as_bytes())?;
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("some screen-N.html is free")
}

fn css(fg: Color, bg: Color, m: Modifier) -> String {
    let mut s = String::new();
    if let Some(c) = rgb(fg) {
        let _ = write!(s, "color:{c};");
    }
    if let Some(c) = rgb(bg) {
        let _ = write!(s, "background:{c};");
    }
    if m.contains(Modifier::BOLD) {
        s.push_str("font-weight:bold;");
    }
    if m.contains(Modifier::DIM) {
        s.push_str("opacity:0.6;");
    }
    s
}

/// A colour as CSS; `None` for the terminal's default. Named colours as a common dark theme
/// (VS Code's) shows them, the same values the comparison plot uses for the run colours.
fn rgb(c: Color) -> Option<String> {
    let (r, g, b) = match c {
        Color::Reset => return None,
        Color::Rgb(r, g, b) => (r, g, b),
        Color::Black => (0, 0, 0),
        Color::Red => (205, 49, 49),
        Color::Green => (13, 188, 121),
        Color::Yellow => (229, 229, 16),
        Color::Blue => (36, 114, 200),
        Color::Magenta => (188, 63, 188),
        Color::Cyan => (17, 168, 205),
        Color::Gray => (204, 204, 204),
        Color::DarkGray => (102, 102, 102),
        Color::White => (229, 229, 229),
        Color::Indexed(i) => indexed(i),
        named => {
            let ansi = match named {
                Color::LightRed => 9,
                Color::LightGreen => 10,
                Color::LightYellow => 11,
                Color::LightBlue => 12,
                Color::LightMagenta => 13,
                _ => 14,
            };
            crate::plotting::Swatch::Ansi(ansi).rgb()
        }
    };
    Some(format!("#{r:02x}{g:02x}{b:02x}"))
}

/// xterm's 256-colour cube and grey ramp (the 16 system colours as grey: rarely used here).
fn indexed(i: u8) -> (u8, u8, u8) {
    match i {
        16..=231 => {
            let k = i - 16;
            let v = |n: u8| if n == 0 { 0 } else { 55 + 40 * n };
            (v(k / 36), v(k / 6 % 6), v(k % 6))
        }
        232.. => {
            let g = 8 + 10 * (i - 232);
            (g, g, g)
        }
        _ => (204, 204, 204),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::style::{Style, Stylize};
    use ratatui::text::Line;

    #[test]
    fn a_drawn_screen_becomes_html_with_its_colours() {
        let mut t = Terminal::new(TestBackend::new(20, 2)).unwrap();
        t.draw(|f| {
            let line = Line::from(vec![
                "plain<1>".fg(Color::LightRed).bold(),
                " & ".into(),
                ratatui::text::Span::styled("v2", Style::new().fg(Color::Rgb(1, 2, 3)).dim()),
            ]);
            f.render_widget(line, f.area());
        })
        .unwrap();
        let page = html(t.backend().buffer());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(
            page.contains("<span style=\"color:#f14c4c;font-weight:bold;\">plain&lt;1&gt;</span>"),
            "{page}"
        );
        assert!(page.contains("<span style=\"\"> &amp; </span>"), "{page}");
        assert!(page.contains("color:#010203;opacity:0.6;\">v2"), "{page}");
        let dir = tempfile::tempdir().unwrap();
        let a = write(t.backend().buffer(), dir.path()).unwrap();
        let b = write(t.backend().buffer(), dir.path()).unwrap();
        assert_eq!(a.file_name().unwrap(), "screen-1.html");
        assert_eq!(b.file_name().unwrap(), "screen-2.html");
        assert_eq!(std::fs::read_to_string(b).unwrap(), page);
    }
}
