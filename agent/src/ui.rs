//! The window: egui on eframe (OpenGL through glow), full-screen by default.
//!
//! Everything is painted by hand with a size unit derived from the window height, so
//! the same layout reads from a sofa on a 4K TV and fits a 1280×720 test display.
//! The QR code is one untextured mesh of whole-pixel modules with a 4-module white
//! quiet zone, black on white whatever the theme.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eframe::egui::{
    self, Align, Align2, Color32, FontId, Id, Mesh, Pos2, Rect, Sense, Stroke, StrokeKind, Vec2,
    text::LayoutJob,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::Error;
use crate::request::{Display, PromptKind, QrMatrix};
use crate::service::UiInbox;
use crate::state::{Action, AgentState, Choice, Key, PinEntry, Screen};

const BG: Color32 = Color32::from_rgb(0x10, 0x14, 0x1a);
const TEXT: Color32 = Color32::from_rgb(0xf2, 0xf2, 0xf2);
const DIM: Color32 = Color32::from_rgb(0x9a, 0xa3, 0xad);
const ACCENT: Color32 = Color32::from_rgb(0xff, 0xc8, 0x3d);
const ALERT: Color32 = Color32::from_rgb(0xff, 0x6b, 0x6b);

/// How the window opens.
#[derive(Debug, Clone, Copy)]
pub struct UiOptions {
    /// Full-screen (the default) or an ordinary 1280×720 window.
    pub fullscreen: bool,
}

/// Called with a screen's marker ([`Screen::marker`]) once a frame showing it has been
/// presented.
pub type OnShown = Box<dyn FnMut(&str)>;

/// The eframe application.
pub struct AgentApp {
    state: AgentState,
    inbox: UiInbox,
    actions: UnboundedSender<Action>,
    on_shown: OnShown,
    announced: HashSet<String>,
    drawn: Option<String>,
    first_seen: HashMap<String, Instant>,
    /// Full-screen still to be checked: without a window manager (a bare X server on
    /// a TV) the full-screen hint does nothing, so the window is sized to the monitor.
    fit_to_monitor: bool,
}

impl std::fmt::Debug for AgentApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentApp")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Opens the window and runs until it is closed.
pub fn run(
    inbox: UiInbox,
    actions: UnboundedSender<Action>,
    options: UiOptions,
    on_shown: OnShown,
) -> Result<(), Error> {
    let viewport = egui::ViewportBuilder::default()
        .with_title("scanbind-agent")
        .with_app_id("scanbind-agent")
        .with_inner_size([1280.0, 720.0])
        .with_fullscreen(options.fullscreen)
        .with_decorations(!options.fullscreen);
    let native = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    eframe::run_native(
        "scanbind-agent",
        native,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            inbox.set_waker(move || ctx.request_repaint());
            Ok(Box::new(AgentApp {
                state: AgentState::default(),
                inbox,
                actions,
                on_shown,
                announced: HashSet::new(),
                drawn: None,
                first_seen: HashMap::new(),
                fit_to_monitor: options.fullscreen,
            }))
        }),
    )
    .map_err(|e| Error::Window(e.to_string()))
}

impl eframe::App for AgentApp {
    fn update(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        // What the previous frame drew has been presented by now.
        if let Some(marker) = self.drawn.take()
            && self.announced.insert(marker.clone())
        {
            (self.on_shown)(&marker);
        }
        if self.fit_to_monitor {
            let (monitor, inner) =
                ctx.input(|i| (i.viewport().monitor_size, i.viewport().inner_rect));
            if let (Some(monitor), Some(inner)) = (monitor, inner) {
                self.fit_to_monitor = false;
                if inner.size() != monitor {
                    ctx.send_viewport_cmd(egui::ViewportCommand::OuterPosition(Pos2::ZERO));
                    ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(monitor));
                }
            }
        }
        // Keys first: they act on what the user saw, not on a request that arrived
        // since the last frame.
        for key in ctx.input(|i| keys(&i.events)) {
            if let Some(action) = self.state.key(key) {
                let _ = self.actions.send(action);
            }
        }
        while let Some(cmd) = self.inbox.try_recv() {
            self.state.apply(cmd);
        }
        let live: HashSet<String> = self.state.screens().map(Screen::marker).collect();
        self.announced.retain(|m| live.contains(m));
        self.first_seen
            .retain(|r, _| self.state.screens().any(|s| s.request() == r));
        if let Some(top) = self.state.top() {
            self.first_seen
                .entry(top.request().to_owned())
                .or_insert_with(Instant::now);
        }

        let mut clicked = None;
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE.fill(BG))
            .show(ctx, |ui| {
                let rect = ui.max_rect();
                let page = Page {
                    painter: ui.painter().clone(),
                    rect,
                    u: (rect.height() / 24.0).min(rect.width() / 40.0),
                };
                match self.state.top() {
                    None => page.idle(),
                    Some(Screen::Display { display, .. }) => page.display(display),
                    Some(Screen::Expired {
                        wallet,
                        wallet_name,
                        ..
                    }) => page.expired(wallet.is_some(), wallet_name.as_deref()),
                    Some(Screen::Prompt {
                        request,
                        prompt,
                        selected,
                        pin,
                        ..
                    }) => {
                        let left = prompt.timeout_secs.and_then(|t| {
                            let seen = self.first_seen.get(request)?;
                            Some(u64::from(t).saturating_sub(seen.elapsed().as_secs()))
                        });
                        let buttons = page.prompt(prompt, *selected, pin, left);
                        for (choice, rect) in buttons {
                            if ui
                                .interact(
                                    rect,
                                    Id::new(("choice", choice == Choice::Allow)),
                                    Sense::click(),
                                )
                                .clicked()
                            {
                                clicked = Some(choice);
                            }
                        }
                    }
                }
            });
        if let Some(choice) = clicked {
            self.state.click(choice);
        }

        let marker = self.state.top().map(Screen::marker);
        if let Some(m) = &marker
            && !self.announced.contains(m)
        {
            // One more frame, so the marker is reported once this one is presented.
            ctx.request_repaint();
        }
        self.drawn = marker;
        if !self.state.is_empty() {
            // Countdowns.
            ctx.request_repaint_after(Duration::from_millis(500));
        }
    }

    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        egui::Rgba::from(BG).to_array()
    }
}

/// Maps this frame's key presses to agent keys.
fn keys(events: &[egui::Event]) -> Vec<Key> {
    events
        .iter()
        .filter_map(|e| match e {
            egui::Event::Key {
                key, pressed: true, ..
            } => Some(*key),
            _ => None,
        })
        .filter_map(|k| {
            use egui::Key as K;
            Some(match k {
                K::ArrowLeft | K::ArrowUp => Key::Left,
                K::ArrowRight | K::ArrowDown | K::Tab => Key::Right,
                K::Enter | K::Space => Key::Enter,
                K::Escape => Key::Escape,
                K::Backspace | K::Delete => Key::Backspace,
                K::Num0 => Key::Digit(0),
                K::Num1 => Key::Digit(1),
                K::Num2 => Key::Digit(2),
                K::Num3 => Key::Digit(3),
                K::Num4 => Key::Digit(4),
                K::Num5 => Key::Digit(5),
                K::Num6 => Key::Digit(6),
                K::Num7 => Key::Digit(7),
                K::Num8 => Key::Digit(8),
                K::Num9 => Key::Digit(9),
                _ => return None,
            })
        })
        .collect()
}

/// Seconds until `expires_at` (Unix seconds), 0 once past.
fn seconds_left(expires_at: i64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u64::try_from(expires_at).unwrap_or(0).saturating_sub(now)
}

fn mm_ss(secs: u64) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// One frame's painter and size unit.
struct Page {
    painter: egui::Painter,
    rect: Rect,
    u: f32,
}

impl Page {
    /// Paints `text` anchored at `pos`, wrapped at `wrap`; returns its rect.
    fn text(
        &self,
        pos: Pos2,
        anchor: Align2,
        text: &str,
        size: f32,
        color: Color32,
        wrap: f32,
    ) -> Rect {
        let mut job = LayoutJob::simple(text.to_owned(), FontId::proportional(size), color, wrap);
        job.halign = match anchor.x() {
            Align::Min => Align::Min,
            Align::Center => Align::Center,
            Align::Max => Align::Max,
        };
        let galley = self.painter.layout_job(job);
        let rect = anchor.anchor_size(pos, galley.size());
        // Lines of a centred job are laid out around x = 0.
        let origin = match anchor.x() {
            Align::Min => rect.min,
            Align::Center => Pos2::new(rect.center().x, rect.min.y),
            Align::Max => Pos2::new(rect.max.x, rect.min.y),
        };
        self.painter.galley(origin, galley, color);
        rect
    }

    /// The size `text` takes at `size`, wrapped at `wrap`.
    fn measure(&self, text: &str, size: f32, wrap: f32) -> Vec2 {
        self.painter
            .layout(text.to_owned(), FontId::proportional(size), TEXT, wrap)
            .size()
    }

    fn idle(&self) {
        let c = self.rect.center();
        self.text(
            c,
            Align2::CENTER_BOTTOM,
            "scanbind is ready",
            1.4 * self.u,
            DIM,
            f32::INFINITY,
        );
        self.text(
            c + Vec2::new(0.0, 0.6 * self.u),
            Align2::CENTER_TOP,
            "Codes and confirmations appear here.",
            0.9 * self.u,
            DIM,
            f32::INFINITY,
        );
    }

    /// A QR on the left, the facts on the right.
    fn display(&self, display: &Display) {
        let (w, h) = (self.rect.width(), self.rect.height());
        let side = (h * 0.86).min(w * 0.48);
        let qr_rect = Rect::from_min_size(
            Pos2::new(
                self.rect.left() + w * 0.04,
                self.rect.center().y - side / 2.0,
            ),
            Vec2::splat(side),
        );
        let qr = match display {
            Display::BindingQr(b) => &b.qr,
            Display::OrderCode(o) => &o.qr,
        };
        paint_qr(&self.painter, qr_rect, qr);

        let x = qr_rect.right() + w * 0.05;
        let wrap = self.rect.right() - w * 0.04 - x;
        let mut y = self.rect.top() + h * 0.1;
        let u = self.u;
        let mut line = |text: &str, size: f32, color: Color32, gap: f32| {
            let r = self.text(Pos2::new(x, y), Align2::LEFT_TOP, text, size, color, wrap);
            y = r.bottom() + gap * u;
        };
        let expires_at = match display {
            Display::BindingQr(b) => {
                let wallet = b.wallet_name.as_deref().unwrap_or("your wallet");
                let title = b
                    .title
                    .clone()
                    .unwrap_or_else(|| format!("Link {wallet} to this device"));
                line(&title, 1.6 * u, TEXT, 0.8);
                if let Some(app) = &b.app_name {
                    line(&format!("Asked for by {app}"), 1.2 * u, DIM, 0.6);
                }
                line(
                    &format!("Scan the code with the {wallet} app."),
                    1.1 * u,
                    DIM,
                    0.5,
                );
                if let Some(device) = &b.device_name {
                    line(&format!("This device: {device}"), 1.1 * u, TEXT, 1.2);
                }
                if let Some(code) = &b.match_code {
                    line("Match code (check it on your phone)", 1.0 * u, DIM, 0.1);
                    line(code, 4.0 * u, ACCENT, 1.0);
                }
                b.expires_at
            }
            Display::OrderCode(o) => {
                let title = o.title.as_deref().unwrap_or("Scan to pay");
                line(title, 1.6 * u, TEXT, 0.8);
                if let Some(app) =
                    crate::request::app_line(o.app_name.as_deref(), o.app_exe.as_deref())
                {
                    line(&app, 1.2 * u, DIM, 0.6);
                }
                if let Some(amount) = &o.amount_text {
                    line(amount, 3.5 * u, ACCENT, 0.6);
                }
                if let Some(description) = &o.description {
                    line(description, 1.1 * u, TEXT, 1.2);
                }
                o.expires_at
            }
        };
        if let Some(at) = expires_at {
            let left = seconds_left(at);
            if left == 0 {
                line("Expired", 1.4 * u, ALERT, 0.0);
            } else {
                line(&format!("Expires in {}", mm_ss(left)), 1.4 * u, TEXT, 0.0);
            }
        }
    }

    fn expired(&self, can_renew: bool, wallet_name: Option<&str>) {
        let c = self.rect.center();
        let u = self.u;
        let wallet = wallet_name.unwrap_or("the wallet");
        let wrap = self.rect.width() * 0.8;
        self.text(
            c - Vec2::new(0.0, 2.0 * u),
            Align2::CENTER_BOTTOM,
            &format!("The code to link {wallet} has expired."),
            1.8 * u,
            TEXT,
            wrap,
        );
        if can_renew {
            self.text(
                c,
                Align2::CENTER_CENTER,
                "Press Enter for a fresh code",
                1.6 * u,
                ACCENT,
                wrap,
            );
        }
        self.text(
            c + Vec2::new(0.0, 2.0 * u),
            Align2::CENTER_TOP,
            "Escape to close",
            1.0 * u,
            DIM,
            wrap,
        );
    }

    /// The question, then buttons or the PIN field; returns the buttons' rects.
    fn prompt(
        &self,
        prompt: &crate::request::Prompt,
        selected: Choice,
        pin: &PinEntry,
        secs_left: Option<u64>,
    ) -> Vec<(Choice, Rect)> {
        let (w, h) = (self.rect.width(), self.rect.height());
        let u = self.u;
        let cx = self.rect.center().x;
        let title = prompt.title.as_deref().unwrap_or(match prompt.kind {
            PromptKind::Consent => "A new app wants to charge your wallet",
            PromptKind::Payment => "Confirm the payment",
            PromptKind::ParentApproval => "A parent's approval is needed",
            PromptKind::Unbind => "An app wants to unbind a wallet",
        });
        let mut t = self.text(
            Pos2::new(cx, self.rect.top() + h * 0.08),
            Align2::CENTER_TOP,
            title,
            1.2 * u,
            DIM,
            w * 0.9,
        );
        // Who asks: the name from the system's metadata, the executable beside it.
        if let Some(app) = prompt.app_line() {
            t = self.text(
                Pos2::new(cx, t.bottom() + 0.6 * u),
                Align2::CENTER_TOP,
                &app,
                1.1 * u,
                TEXT,
                w * 0.9,
            );
        }
        // The question as large as fits in about a third of the screen.
        let wrap = w * 0.85;
        let mut size = 2.2 * u;
        while size > u && self.measure(&prompt.message, size, wrap).y > h * 0.34 {
            size *= 0.9;
        }
        let m = self.text(
            Pos2::new(cx, t.bottom() + 1.0 * u),
            Align2::CENTER_TOP,
            &prompt.message,
            size,
            TEXT,
            wrap,
        );
        let row = (m.bottom() + 1.5 * u).max(self.rect.top() + h * 0.5);
        let hint_y = row + 5.5 * u;
        let mut buttons = Vec::new();
        let hint = if prompt.pin_required {
            let field =
                Rect::from_center_size(Pos2::new(cx, row + 1.6 * u), Vec2::new(w * 0.32, 3.2 * u));
            self.painter.rect_stroke(
                field,
                0.4 * u,
                Stroke::new(0.15 * u, ACCENT),
                StrokeKind::Inside,
            );
            let n = pin.len();
            if n == 0 {
                self.text(
                    field.center(),
                    Align2::CENTER_CENTER,
                    "PIN",
                    1.6 * u,
                    DIM,
                    f32::INFINITY,
                );
            }
            // One dot per digit, drawn (no font glyph needed).
            let step = 1.4 * u;
            let first = field.center().x - step * (n as f32 - 1.0) / 2.0;
            for i in 0..n {
                let c = Pos2::new(first + step * i as f32, field.center().y);
                self.painter.circle_filled(c, 0.45 * u, TEXT);
            }
            if let Some(n) = prompt.attempts_left {
                let s = if n == 1 { "" } else { "s" };
                self.text(
                    Pos2::new(cx, field.bottom() + 0.6 * u),
                    Align2::CENTER_TOP,
                    &format!("{n} attempt{s} left"),
                    1.0 * u,
                    DIM,
                    f32::INFINITY,
                );
            }
            "Type the parent PIN · Enter to approve · Escape to refuse"
        } else {
            let size = Vec2::new(w * 0.2, 3.2 * u);
            for (choice, label, dx) in [
                (Choice::Deny, "Deny", -0.13),
                (Choice::Allow, "Allow", 0.13),
            ] {
                let r = Rect::from_center_size(Pos2::new(cx + dx * w, row + size.y / 2.0), size);
                let on = choice == selected;
                if on {
                    self.painter.rect_filled(r, 0.5 * u, ACCENT);
                } else {
                    self.painter.rect_stroke(
                        r,
                        0.5 * u,
                        Stroke::new(0.12 * u, DIM),
                        StrokeKind::Inside,
                    );
                }
                self.text(
                    r.center(),
                    Align2::CENTER_CENTER,
                    label,
                    1.6 * u,
                    if on { BG } else { TEXT },
                    f32::INFINITY,
                );
                buttons.push((choice, r));
            }
            "Left / Right to choose · Enter to confirm · Escape to refuse"
        };
        self.text(
            Pos2::new(cx, hint_y),
            Align2::CENTER_TOP,
            hint,
            1.0 * u,
            DIM,
            w * 0.9,
        );
        if let Some(left) = secs_left {
            self.text(
                Pos2::new(cx, hint_y + 1.8 * u),
                Align2::CENTER_TOP,
                &format!("Answer within {}", mm_ss(left)),
                1.0 * u,
                DIM,
                f32::INFINITY,
            );
        }
        buttons
    }
}

/// Draws `qr` black on white with a 4-module quiet zone, centred in `area`, with whole
/// pixels per module so the edges stay sharp.
fn paint_qr(painter: &egui::Painter, area: Rect, qr: &QrMatrix) {
    const QUIET: usize = 4;
    let n = qr.width() + 2 * QUIET;
    let ppp = painter.pixels_per_point();
    let side_px = (area.width().min(area.height()) * ppp).floor();
    let module_px = (side_px / n as f32).floor().max(1.0);
    let module = module_px / ppp;
    let total = module * n as f32;
    let min = area.center() - Vec2::splat(total / 2.0);
    let min = Pos2::new((min.x * ppp).round() / ppp, (min.y * ppp).round() / ppp);
    let mut mesh = Mesh::default();
    mesh.add_colored_rect(Rect::from_min_size(min, Vec2::splat(total)), Color32::WHITE);
    for y in 0..qr.width() {
        let mut x = 0;
        while x < qr.width() {
            if !qr.is_dark(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < qr.width() && qr.is_dark(x, y) {
                x += 1;
            }
            let r = Rect::from_min_size(
                min + Vec2::new((start + QUIET) as f32 * module, (y + QUIET) as f32 * module),
                Vec2::new((x - start) as f32 * module, module),
            );
            mesh.add_colored_rect(r, Color32::BLACK);
        }
    }
    painter.add(egui::Shape::mesh(mesh));
}
