//! Which panels a terminal size shows: one rule read by the views (to lay them out) and by `App`
//! (to know whether a key must bring a hidden panel into view).

/// The smallest terminal the dashboard draws in.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// From this size every panel is on screen at once.
const FULL_WIDTH: u16 = 110;
const FULL_HEIGHT: u16 = 34;

/// Whether a `width`×`height` terminal shows every panel at once (else the heatmap is hidden
/// and `p` brings it into the side panel's place).
pub fn shows_every_panel(width: u16, height: u16) -> bool {
    width >= FULL_WIDTH && height >= FULL_HEIGHT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_panel_from_the_full_size_up() {
        assert!(shows_every_panel(120, 40));
        assert!(shows_every_panel(110, 34));
        assert!(!shows_every_panel(100, 30));
        assert!(!shows_every_panel(200, 33));
    }
}
