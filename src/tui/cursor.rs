//! The replay time cursor: a step number every panel reads, so the whole dashboard shows one
//! moment. Steps rather than record indices, because runs restarted mid-session (and bounded
//! histories) do not share indices but do share the step clock.

/// A position in `[first, last]`, both step numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeCursor {
    pub first: u64,
    pub last: u64,
    pub at: u64,
}

impl TimeCursor {
    /// Starts at the end: a replay opens on the run's final state.
    pub fn new(first: u64, last: u64) -> Self {
        let last = last.max(first);
        Self {
            first,
            last,
            at: last,
        }
    }

    /// Move by `delta` steps, clamped to the range; returns whether the position changed.
    pub fn shift(&mut self, delta: i64) -> bool {
        let target = (self.at as i128 + delta as i128).clamp(self.first as i128, self.last as i128);
        self.jump(target as u64)
    }

    /// A tenth of the range, at least one step.
    pub fn page(&self) -> i64 {
        (((self.last - self.first) / 10).max(1)).min(i64::MAX as u64) as i64
    }

    pub fn jump(&mut self, step: u64) -> bool {
        let step = step.clamp(self.first, self.last);
        let moved = step != self.at;
        self.at = step;
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_and_clamps() {
        let mut c = TimeCursor::new(1, 101);
        assert_eq!(c.at, 101);
        assert!(!c.shift(1));
        assert!(c.shift(-c.page()));
        assert_eq!(c.at, 91);
        assert!(c.jump(0));
        assert_eq!(c.at, 1);
        assert!(!c.shift(-1));
        assert!(c.shift(1));
        assert_eq!(c.at, 2);
    }

    #[test]
    fn empty_range_is_a_point() {
        let mut c = TimeCursor::new(0, 0);
        assert_eq!(c.page(), 1);
        assert!(!c.shift(5));
    }
}
