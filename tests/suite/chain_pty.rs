//! Issue 28 on the real binary: the default experiment (plain-56, v1-56, v2-56 on MNIST) at
//! 120×40 shows plain-56's why line, the learning panel and the step-1 figures without a key.

use crate::pty;
use std::time::Duration;

#[test]
fn the_default_experiment_shows_plain_56s_why_line() {
    let dir = tempfile::tempdir().unwrap();
    let session = pty::real(dir.path(), &[]);
    // The why line needs every third's update ratio: it comes with plain-56's first step.
    session.wait_for(" 1 plain-56: ", Duration::from_secs(120));
    session.wait_for("eff. learning rate", Duration::from_secs(5));
    session.wait_for("step 1 ×", Duration::from_secs(5));
    session.quit();
}
