//! `resviz data fetch cifar10` against a local HTTP server on 127.0.0.1 that serves a small
//! archive of the official layout, built here: a clean download, an interrupted one resumed with
//! a Range request, a corrupted one, a wrong checksum, and `--dataset cifar10` before and after.

use md5::{Digest, Md5};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// How the server answers one request.
#[derive(Clone, Copy, Debug)]
enum Serve {
    /// The file (or, for `Range: bytes=N-`, its tail with 206).
    Whole,
    /// Headers promising the whole file, then only this many body bytes, then close.
    CutAfter(usize),
    /// The whole file with one byte flipped.
    Corrupt,
}

struct Server {
    url: String,
    /// The `Range` start of every request served (None: no Range header).
    ranges: Arc<Mutex<Vec<Option<u64>>>>,
}

/// Serve `body` to one connection per entry of `plan`, in order.
fn serve(body: Vec<u8>, plan: Vec<Serve>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/cifar-10-binary.tar.gz",
        listener.local_addr().unwrap()
    );
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        for how in plan {
            let (mut conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut range = None;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(r) = l.strip_prefix("range: bytes=") {
                    range = r.trim_end_matches('-').parse::<u64>().ok();
                }
            }
            seen.lock().unwrap().push(range);
            let start = range.unwrap_or(0) as usize;
            let mut data = body.clone();
            if let Serve::Corrupt = how {
                data[body.len() / 2] ^= 0xFF;
            }
            let tail = &data[start..];
            let head = if range.is_some() {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
                    tail.len(),
                    data.len() - 1,
                    data.len()
                )
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    tail.len()
                )
            };
            let _ = conn.write_all(head.as_bytes());
            let n = match how {
                Serve::CutAfter(k) => k.min(tail.len()),
                _ => tail.len(),
            };
            let _ = conn.write_all(&tail[..n]);
            let _ = conn.flush();
            // Dropping the connection closes it: a cut body ends early.
        }
    });
    Server { url, ranges }
}

/// A CIFAR-10 archive of the official layout with `per_file` records per batch file.
pub(crate) fn archive(per_file: usize) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut s: u64 = 7;
    let files = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for name in files {
        let mut data = Vec::new();
        for r in 0..per_file {
            data.push((r % 10) as u8);
            // Pseudo-random pixels: an archive of incompressible size, so a cut lands mid-file.
            data.extend((0..3072).map(|_| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (s >> 56) as u8
            }));
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{name}"), &data[..])
            .unwrap();
    }
    let meta = b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(meta.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "cifar-10-batches-bin/batches.meta.txt", &meta[..])
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

pub(crate) fn md5_hex(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn resviz(cache: &Path, url: &str, md5: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(crate::common::BIN);
    cmd.args(args)
        .env("RESVIZ_CACHE_DIR", cache)
        .env("RESVIZ_CIFAR10_URL", url)
        .env("RESVIZ_CIFAR10_MD5", md5);
    for p in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(p);
    }
    cmd.output().unwrap()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) const FETCH: &[&str] = &["data", "fetch", "cifar10"];
const PROBE: &[&str] = &[
    "probe",
    "--dataset",
    "cifar10",
    "--models",
    "v1a-8",
    "--batch",
    "4",
    "--json",
];

#[test]
fn interrupted_download_resumes_and_the_data_loads() {
    let body = archive(3);
    let md5 = md5_hex(&body);
    let cut = body.len() / 3;
    let srv = serve(body.clone(), vec![Serve::CutAfter(cut), Serve::Whole]);
    let cache = tempfile::tempdir().unwrap();

    // Before any fetch: a clear hint, not a bare "file not found".
    let o = resviz(cache.path(), &srv.url, &md5, PROBE);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("resviz data fetch cifar10"),
        "{}",
        stderr(&o)
    );

    let o = resviz(cache.path(), &srv.url, &md5, FETCH);
    assert!(!o.status.success(), "a cut download must fail");
    let e = stderr(&o);
    assert!(
        e.contains("interrupted") && e.contains("again to resume"),
        "{e}"
    );
    let part = cache.path().join("cifar10/cifar-10-binary.tar.gz.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), cut as u64);

    let o = resviz(cache.path(), &srv.url, &md5, FETCH);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("resumed at byte {cut}")),
        "{}",
        stderr(&o)
    );
    // The second request asked only for the rest.
    assert_eq!(*srv.ranges.lock().unwrap(), vec![None, Some(cut as u64)]);
    let bin = cache
        .path()
        .join("cifar10/cifar-10-batches-bin/test_batch.bin");
    assert_eq!(std::fs::metadata(bin).unwrap().len(), 3 * 3073);

    let o = resviz(cache.path(), &srv.url, &md5, PROBE);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["models"][0]["loss"].as_f64().unwrap().is_finite());

    // A second fetch has nothing to do (and makes no request: the server is gone).
    let o = resviz(cache.path(), &srv.url, &md5, FETCH);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already"), "{}", stderr(&o));
}

#[test]
fn corrupted_download_is_reported_and_deleted() {
    let body = archive(1);
    let md5 = md5_hex(&body);
    let srv = serve(body, vec![Serve::Corrupt, Serve::Whole]);
    let cache = tempfile::tempdir().unwrap();
    let o = resviz(cache.path(), &srv.url, &md5, FETCH);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("MD5") && e.contains(&md5) && e.contains("corrupt"),
        "{e}"
    );
    assert!(!cache.path().join("cifar10/cifar-10-binary.tar.gz").exists());
    assert!(!cache.path().join("cifar10/cifar-10-batches-bin").exists());
    // Run again: a fresh, whole download.
    let o = resviz(cache.path(), &srv.url, &md5, FETCH);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(*srv.ranges.lock().unwrap(), vec![None, None]);
}

#[test]
fn wrong_checksum_is_refused() {
    let body = archive(1);
    let actual = md5_hex(&body);
    let srv = serve(body, vec![Serve::Whole]);
    let cache = tempfile::tempdir().unwrap();
    let wrong = "00000000000000000000000000000000";
    let o = resviz(cache.path(), &srv.url, wrong, FETCH);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains(wrong) && e.contains(&actual), "{e}");
    assert!(!cache.path().join("cifar10/.complete").exists());
    let o = resviz(cache.path(), &srv.url, wrong, PROBE);
    assert!(
        stderr(&o).contains("resviz data fetch cifar10"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_http_error_is_one_clear_line() {
    let cache = tempfile::tempdir().unwrap();
    // Nothing listens on this port once the listener is dropped.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/x.tar.gz");
    let o = resviz(cache.path(), &url, "x", FETCH);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.starts_with("resviz: error:") && e.contains(&url), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}
