//! Issue 31 items 5 and 10: `data fetch` against misbehaving servers on 127.0.0.1 — silent,
//! trickling, an endless body, a 206 reply with the wrong Content-Range, a redirect to file:// —
//! and archives with a symlink or a member outside the cache. Each ends within seconds with one
//! clear line, writes no more than the archive's size, and leaves nothing unpacked.

use crate::data_fetch::{FETCH, archive, md5_hex, stderr};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Serve each connection with `answer(stream, range start)` on a thread; the archive's URL.
fn serve(answer: impl Fn(TcpStream, Option<u64>) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/a.tar.gz", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut range = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(r) = l.strip_prefix("range: bytes=") {
                    range = r.trim_end_matches('-').parse::<u64>().ok();
                }
            }
            answer(conn, range);
        }
    });
    url
}

/// `data fetch` with a 1 s timeout and a `limit`-byte archive; its output and how long it took.
fn fetch(cache: &Path, url: &str, md5: &str, limit: u64) -> (Output, Duration) {
    let start = Instant::now();
    let mut cmd = Command::new(crate::common::BIN);
    cmd.args(FETCH)
        .env("RESVIZ_CACHE_DIR", cache)
        .env("RESVIZ_CIFAR10_URL", url)
        .env("RESVIZ_CIFAR10_MD5", md5)
        .env("RESVIZ_CIFAR10_BYTES", limit.to_string())
        .env("RESVIZ_FETCH_TIMEOUT_SECS", "1");
    for p in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env_remove(p);
    }
    let o = cmd.output().unwrap();
    (o, start.elapsed())
}

fn one_error_line(o: &Output) -> String {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    let errors: Vec<&str> = e
        .lines()
        .filter(|l| l.starts_with("resviz: error"))
        .collect();
    assert_eq!(errors.len(), 1, "{e}");
    assert!(!e.contains("panicked"), "{e}");
    errors[0].to_string()
}

fn part(cache: &Path) -> std::path::PathBuf {
    cache.join("cifar10/cifar-10-binary.tar.gz.part")
}

#[test]
fn a_silent_server_times_out_with_a_retry_hint() {
    let url = serve(|conn, _| {
        std::thread::sleep(Duration::from_secs(20));
        drop(conn);
    });
    let cache = tempfile::tempdir().unwrap();
    let (o, took) = fetch(cache.path(), &url, "x", 1 << 20);
    let e = one_error_line(&o);
    assert!(e.contains("run the same command again"), "{e}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_trickle_or_a_stall_mid_body_is_given_up_and_kept_for_resuming() {
    for stall in [false, true] {
        let url = serve(move |mut conn, _| {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&[1; 100]);
            for _ in 0..200 {
                std::thread::sleep(Duration::from_millis(if stall { 20_000 } else { 100 }));
                if conn.write_all(&[1]).is_err() {
                    return;
                }
            }
        });
        let cache = tempfile::tempdir().unwrap();
        let (o, took) = fetch(cache.path(), &url, "x", 1 << 20);
        let e = one_error_line(&o);
        assert!(e.contains("interrupted") && e.contains("again"), "{e}");
        assert!(took < Duration::from_secs(10), "stall {stall}: {took:?}");
        assert!(part(cache.path()).exists(), "kept for resuming");
    }
}

#[test]
fn an_endless_body_stops_at_the_archive_size_and_is_deleted() {
    // No Content-Length: the body ends when the connection closes, which it never does.
    let url = serve(|mut conn, _| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let block = vec![0u8; 1 << 16];
        while conn.write_all(&block).is_ok() {}
    });
    let cache = tempfile::tempdir().unwrap();
    let (o, took) = fetch(cache.path(), &url, "x", 1 << 20);
    let e = one_error_line(&o);
    assert!(e.contains("more than the 1048576"), "{e}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(!part(cache.path()).exists());
    // A Content-Length over the limit is refused before a byte is written.
    let url = serve(|mut conn, _| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5000000000\r\n\r\n");
    });
    let (o, _) = fetch(cache.path(), &url, "x", 1 << 20);
    assert!(one_error_line(&o).contains("5000000000 bytes, more than"));
    assert!(!part(cache.path()).exists());
}

#[test]
fn a_206_with_the_wrong_content_range_is_not_appended() {
    let url = serve(|mut conn, range| {
        // Asked for the tail from `range`, sends the file from byte 0 as if it were the tail.
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/{}\r\n\r\n",
            range.unwrap_or(0) + 10
        );
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(&[9; 10]);
    });
    let cache = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cache.path().join("cifar10")).unwrap();
    std::fs::write(part(cache.path()), [1; 100]).unwrap();
    let (o, _) = fetch(cache.path(), &url, "x", 1 << 20);
    let e = one_error_line(&o);
    assert!(
        e.contains("bytes from 100") && e.contains("bytes 0-9/110"),
        "{e}"
    );
    assert!(!part(cache.path()).exists());
}

#[test]
fn a_redirect_to_a_file_url_is_refused_by_name() {
    let url = serve(|mut conn, _| {
        let _ = conn.write_all(
            b"HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n\r\n",
        );
    });
    let cache = tempfile::tempdir().unwrap();
    let (o, _) = fetch(cache.path(), &url, "x", 1 << 20);
    let e = one_error_line(&o);
    assert!(e.contains("redirected to file:///etc/passwd"), "{e}");
}

/// A copy of the test archive with one extra member: a symlink, or a file named `name` (raw,
/// so that `..` gets in).
fn archive_with(symlink: bool, name: &str) -> Vec<u8> {
    let gz = archive(1);
    let mut tar_bytes = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut tar_bytes).unwrap();
    // Drop the two zero blocks that end the archive, then append the member and end again.
    let end = tar_bytes.len() - 1024;
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_mode(0o644);
    let body: &[u8] = if symlink {
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_link_name("/etc/passwd").unwrap();
        h.set_size(0);
        &[]
    } else {
        h.set_size(4);
        b"evil"
    };
    h.set_cksum();
    let mut out = tar::Builder::new(Vec::new());
    out.append(&h, body).unwrap();
    let member = out.into_inner().unwrap();
    let tar_bytes = [&tar_bytes[..end], &member[..], &[0; 1024][..]].concat();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&tar_bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn archives_with_symlinks_or_members_outside_the_cache_are_refused_leaving_nothing() {
    for (symlink, name, want) in [
        (true, "cifar-10-batches-bin/link", "Symlink"),
        (false, "../outside.txt", "outside the cache"),
        (false, "/tmp/absolute.txt", "outside the cache"),
    ] {
        let body = archive_with(symlink, name);
        let md5 = md5_hex(&body);
        let url = serve(move |mut conn, _| {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        });
        let cache = tempfile::tempdir().unwrap();
        let (o, _) = fetch(cache.path(), &url, &md5, 1 << 20);
        let e = one_error_line(&o);
        assert!(
            e.contains(want) && e.contains("nothing was unpacked"),
            "{name}: {e}"
        );
        let left: Vec<_> = std::fs::read_dir(cache.path().join("cifar10"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["cifar-10-binary.tar.gz"], "{name}");
        assert!(!cache.path().join("outside.txt").exists());
    }
}
