//! `resviz watch` end to end on a pty: a stream file recorded from PyTorch (torchvision
//! resnet18) is followed as it grows, its blocks show, training keys say they cannot, `s` saves
//! a snapshot that loads, and bad input is one status line, not a panic. Then a TCP peer.

use crate::pty::Session;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const FIXTURE: &str = "tests/fixtures/stream/resnet18.jsonl";

fn lines() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|l| format!("{l}\n")).collect()
}

fn watch(dir: &Path, stream: &str) -> Session {
    crate::pty::real(dir, &["watch", stream])
}

const T: Duration = Duration::from_secs(20);

#[test]
fn watching_a_growing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.jsonl");
    let lines = lines();
    let mut f = std::fs::File::create(&path).unwrap();
    for l in &lines[..3] {
        f.write_all(l.as_bytes()).unwrap();
    }
    f.flush().unwrap();
    let mut s = watch(dir.path(), "run.jsonl");
    s.wait_for("◉ watching", T);
    s.wait_for("resnet18", T);
    s.wait_for("step 2", T);
    // The stream grows: the dashboard follows, a partial line waits for its end.
    let (last, rest) = lines[3..].split_last().unwrap();
    for l in rest {
        f.write_all(l.as_bytes()).unwrap();
    }
    let (a, b) = last.split_at(last.len() / 2);
    f.write_all(a.as_bytes()).unwrap();
    f.flush().unwrap();
    s.wait_for(&format!("step {}", lines.len() - 2), T);
    f.write_all(b.as_bytes()).unwrap();
    f.flush().unwrap();
    s.wait_for(&format!("step {}", lines.len() - 1), T);
    s.press(b"p"); // activations: the blocks by name
    s.wait_until("a block name", T, |t| t.contains("layer4.1"));
    s.press(b" ");
    s.wait_for("watching a stream: cannot pause or step", T);
    s.press(b"]");
    s.wait_for("cannot change the learning rate", T);
    s.press(b"s");
    s.wait_for("saved saves/", T);
    let saves = dir.path().join("saves");
    let saved = std::fs::read_dir(&saves)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let snap = resviz::snapshot::load(&saved).unwrap();
    assert_eq!(snap.runs[0].info.spec, "resnet18");
    assert_eq!(snap.runs[0].steps.len(), lines.len() - 1);
    // Bad input: one line on screen, the dashboard goes on.
    f.write_all(b"{\"kind\": \"evaluation\"}\n").unwrap();
    f.flush().unwrap();
    s.wait_for(&format!("line {}: unknown kind", lines.len() + 1), T);
    let screen = s.quit();
    assert!(!screen.contents().contains("panicked"));
}

#[test]
fn watching_a_tcp_peer() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut s = watch(dir.path(), &format!("tcp://127.0.0.1:{port}"));
    s.wait_for("listening on", T);
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let lines = lines();
    for l in &lines {
        c.write_all(l.as_bytes()).unwrap();
    }
    s.wait_for(&format!("step {}", lines.len() - 1), T);
    s.press(b"p");
    s.wait_for("layer1.0", T);
    assert!(
        !s.text().contains("disconnected"),
        "the peer is still there"
    );
    drop(c);
    s.wait_for(&format!("disconnected after {} steps", lines.len() - 1), T);
    s.quit();
}
