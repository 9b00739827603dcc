//! Reading streams as they are written: a file followed as it grows (`tail -f`), or a TCP port
//! that trainers connect to (`tcp://HOST:PORT`, one trainer at a time; each connection is a new
//! run). Each source runs on its own thread and hands what it reads to a sink that must never
//! block, so a slow viewer never slows the reading, and the reading never slows the trainer
//! beyond the socket's own buffering.

use super::{Item, Parser, RunHeader, StreamStep};
use std::fs::File;
use std::io::{self, Read, Seek};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often an idle source looks again (a grown file, a new connection, the stop flag).
const POLL: Duration = Duration::from_millis(100);

/// Where a stream comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    File(PathBuf),
    /// `HOST:PORT` to listen on.
    Tcp(String),
}

impl FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("tcp://") {
            Some(addr)
                if addr
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok()) =>
            {
                Ok(Self::Tcp(addr.to_string()))
            }
            Some(_) => Err(format!("{s}: expected tcp://HOST:PORT")),
            None if s.is_empty() => Err("an empty stream name".into()),
            None => Ok(Self::File(s.into())),
        }
    }
}

impl Source {
    /// How the dashboard names the source until its header names the run.
    pub fn label(&self) -> String {
        match self {
            Self::File(p) => p.display().to_string(),
            Self::Tcp(a) => format!("tcp://{a}"),
        }
    }
}

/// What a source reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A run starts (the first line of a file, of a connection).
    Run(RunHeader),
    Step(StreamStep),
    /// Something to tell the user (waiting, connected, disconnected).
    Note(String),
    /// The stream broke (bad input, a read error): one line; the source reads no further on this
    /// file, or waits for the next connection.
    Error(String),
}

/// Start reading `source` on a thread of its own, handing events to `sink` until `stop` is set.
/// A TCP address is bound here, so a port in use is an error now and not on screen later.
pub fn spawn(
    source: Source,
    sink: impl FnMut(Event) + Send + 'static,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let name = format!("stream {}", source.label());
    match source {
        Source::File(path) => std::thread::Builder::new()
            .name(name)
            .spawn(move || follow(path, sink, &stop)),
        Source::Tcp(addr) => {
            let listener = TcpListener::bind(&addr)?;
            listener.set_nonblocking(true)?;
            std::thread::Builder::new()
                .name(name)
                .spawn(move || listen(listener, addr, sink, &stop))
        }
    }
}

/// Read complete lines from `reader` as they arrive; a partial last line waits for the rest.
/// Returns when `stop` is set, at a parse error, or when `more` says the input has ended.
fn read_lines(
    reader: &mut impl Read,
    sink: &mut impl FnMut(Event),
    stop: &AtomicBool,
    mut more: impl FnMut() -> io::Result<bool>,
) -> Result<u64, String> {
    let mut parser = Parser::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    let mut steps = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            // A socket's read timeout: no data yet (its end is a read of 0 bytes).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => return Err(format!("read failed: {e}")),
        };
        if n == 0 {
            match more() {
                Ok(true) => {
                    std::thread::sleep(POLL);
                    continue;
                }
                Ok(false) if buf.iter().all(u8::is_ascii_whitespace) => return Ok(steps),
                Ok(false) => {
                    let line = parser.lines() + 1;
                    return Err(super::StreamError::Truncated { line }.to_string());
                }
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        while let Some(end) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + end];
            start += end + 1;
            match parser.line_bytes(line).map_err(|e| e.to_string())? {
                Some(Item::Run(h)) => sink(Event::Run(h)),
                Some(Item::Step(s)) => {
                    steps += 1;
                    sink(Event::Step(s))
                }
                None => {}
            }
        }
        buf.drain(..start);
        if buf.len() > super::MAX_LINE {
            let line = parser.lines() + 1;
            return Err(super::StreamError::TooLong { line }.to_string());
        }
    }
    Ok(steps)
}

fn follow(path: PathBuf, mut sink: impl FnMut(Event), stop: &AtomicBool) {
    let shown = path.display().to_string();
    let mut file = loop {
        match File::open(&path) {
            Ok(f) => break f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                sink(Event::Note(format!("waiting for {shown} to appear")));
                while !path.exists() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(POLL);
                }
            }
            Err(e) => return sink(Event::Error(format!("cannot read {shown}: {e}"))),
        }
    };
    // Follow forever (a trainer may write more); a file that shrinks was rewritten under us.
    let mut reopen = file.try_clone();
    let result = {
        read_lines(&mut file, &mut sink, stop, || {
            let pos = match reopen.as_mut() {
                Ok(f) => f.stream_position()?,
                Err(_) => return Ok(true),
            };
            let len = std::fs::metadata(&path)?.len();
            match len < pos {
                true => Err(io::Error::other("the file shrank (rewritten?)")),
                false => Ok(true),
            }
        })
    };
    if let Err(e) = result {
        sink(Event::Error(format!("{shown}: {e}")));
    }
}

fn listen(listener: TcpListener, addr: String, mut sink: impl FnMut(Event), stop: &AtomicBool) {
    sink(Event::Note(format!("listening on tcp://{addr}")));
    while !stop.load(Ordering::Relaxed) {
        let (conn, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(POLL);
                continue;
            }
            Err(e) => {
                sink(Event::Error(format!("tcp://{addr}: accept failed: {e}")));
                std::thread::sleep(POLL);
                continue;
            }
        };
        sink(Event::Note(format!("{peer} connected")));
        match serve(conn, &mut sink, stop) {
            Ok(steps) => sink(Event::Note(format!(
                "{peer} disconnected after {steps} steps; listening on tcp://{addr}"
            ))),
            Err(e) => sink(Event::Error(format!("{peer}: {e}; connection closed"))),
        }
    }
}

fn serve(conn: TcpStream, sink: &mut impl FnMut(Event), stop: &AtomicBool) -> Result<u64, String> {
    let setup = |e: io::Error| format!("socket: {e}");
    conn.set_nonblocking(false).map_err(setup)?;
    conn.set_read_timeout(Some(POLL)).map_err(setup)?;
    let mut reader = &conn;
    read_lines(&mut reader, sink, stop, || Ok(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::Mutex;

    const HEADER: &str =
        r#"{"kind":"run","version":1,"name":"n","block_names":["stem"],"param_names":[]}"#;

    fn step(n: u64) -> String {
        format!(
            r#"{{"kind":"step","step":{n},"loss":1,"blocks":[{{"name":"stem","grad_norm":1,"act_mean":0,"act_std":1,"act_zero_frac":0}}]}}"#
        )
    }

    fn collect() -> (Arc<Mutex<Vec<Event>>>, impl FnMut(Event) + Send + 'static) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (seen, move |e| s.lock().unwrap().push(e))
    }

    fn wait(seen: &Mutex<Vec<Event>>, ok: impl Fn(&[Event]) -> bool) {
        for _ in 0..100 {
            if ok(&seen.lock().unwrap()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!("never: {:?}", seen.lock().unwrap());
    }

    fn steps(events: &[Event]) -> usize {
        events
            .iter()
            .filter(|e| matches!(e, Event::Step(_)))
            .count()
    }

    #[test]
    fn a_file_is_followed_as_it_grows_and_a_partial_line_waits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, sink) = collect();
        let t = spawn(Source::File(path.clone()), sink, stop.clone()).unwrap();
        wait(
            &seen,
            |e| matches!(e.first(), Some(Event::Note(n)) if n.contains("waiting")),
        );
        let mut f = File::create(&path).unwrap();
        let s2 = step(2);
        write!(f, "{HEADER}\n{}\n{}", step(1), &s2[..10]).unwrap();
        f.flush().unwrap();
        wait(&seen, |e| steps(e) == 1);
        writeln!(f, "{}", &s2[10..]).unwrap();
        f.flush().unwrap();
        wait(&seen, |e| steps(e) == 2);
        writeln!(f, "{{\"kind\":\"bogus\"}}").unwrap();
        wait(
            &seen,
            |e| matches!(e.last(), Some(Event::Error(m)) if m.contains("line 4: unknown kind")),
        );
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
    }

    #[test]
    fn tcp_peers_connect_send_and_go() {
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, sink) = collect();
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap().to_string();
        drop(probe);
        let t = spawn(Source::Tcp(addr.clone()), sink, stop.clone()).unwrap();
        assert!(
            spawn(Source::Tcp(addr.clone()), |_| {}, stop.clone()).is_err(),
            "port in use"
        );
        for round in 1..=2 {
            let mut c = TcpStream::connect(&addr).unwrap();
            write!(c, "{HEADER}\n{}\n{}\n", step(1), step(2)).unwrap();
            drop(c);
            wait(&seen, |e| {
                e.iter()
                    .filter(
                        |e| matches!(e, Event::Note(n) if n.contains("disconnected after 2 steps")),
                    )
                    .count()
                    == round
            });
        }
        let mut c = TcpStream::connect(&addr).unwrap();
        write!(c, "{HEADER}\n{}", &step(1)[..20]).unwrap();
        drop(c);
        wait(
            &seen,
            |e| matches!(e.last(), Some(Event::Error(m)) if m.contains("line 2: the line stops partway")),
        );
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        let runs = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Run(_)))
            .count();
        assert_eq!(runs, 3);
    }

    #[test]
    fn source_names_parse() {
        assert_eq!(
            "tcp://127.0.0.1:7000".parse(),
            Ok(Source::Tcp("127.0.0.1:7000".into()))
        );
        assert!("tcp://host".parse::<Source>().is_err());
        assert_eq!("a.jsonl".parse(), Ok(Source::File("a.jsonl".into())));
    }
}
