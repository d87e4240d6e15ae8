//! JSON-RPC framing on stdin and stdout, forgiving of bad messages.
//!
//! `lsp-server`'s own stdio transport stops at the first message it cannot
//! decode, which ends the server without a word. Here a body that is not
//! JSON is answered with a Parse error (-32700, id `null`) as JSON-RPC 2.0
//! says, a JSON value that is no message with Invalid Request (-32600),
//! and the server keeps serving. Bytes that are not UTF-8 (a plugin's
//! buffer in another encoding) are read as U+FFFD, so the document still
//! gets diagnostics. A frame that cannot be read (no `Content-Length`, one
//! over [`MAX_MESSAGE`], a length too small or too large) is answered or
//! cut where the next header starts, and reading resumes at that header;
//! only the end of input ends the reader. What the server skips or what
//! ends it is said on stderr, which editors keep in their language-server
//! log.

use std::io::{self, BufRead, Write};

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use lsp_server::{Connection, ErrorCode, Message};
use lsp_types::notification::Notification as _;
use serde_json::{Value, json};

/// The reader and writer threads.
pub struct Threads {
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Threads {
    pub fn join(self) {
        let _ = self.reader.join();
        let _ = self.writer.join();
    }
}

/// A connection on stdin and stdout.
pub fn stdio() -> (Connection, Threads) {
    let (to_client, outgoing) = crossbeam_channel::bounded::<Message>(0);
    let (incoming, from_client) = crossbeam_channel::bounded::<Message>(0);
    let writer = std::thread::Builder::new()
        .name("hcpc-lsp-writer".into())
        .spawn(move || write_all(&outgoing))
        .expect("spawn the writer thread");
    let reader = std::thread::Builder::new()
        .name("hcpc-lsp-reader".into())
        .spawn(move || read_all(&mut io::BufReader::with_capacity(1 << 16, io::stdin()), &incoming))
        .expect("spawn the reader thread");
    (Connection { sender: to_client, receiver: from_client }, Threads { reader, writer })
}

/// Says on stderr what the server could not do.
pub fn log(what: &str) {
    let _ = writeln!(io::stderr().lock(), "hcpc lsp: {what}");
}

fn write_all(outgoing: &Receiver<Message>) {
    for msg in outgoing {
        if let Err(e) = msg.write(&mut io::stdout().lock()) {
            log(&format!("cannot write to the editor, stopping: {e}"));
            return;
        }
    }
}

/// Writes a raw JSON-RPC message (one `lsp-server` cannot express, such as
/// an error response with id `null`); under the stdout lock, like the writer.
fn write_raw(value: &Value) {
    let body = value.to_string();
    let mut out = io::stdout().lock();
    let _ = write!(out, "Content-Length: {}\r\n\r\n{body}", body.len()).and_then(|()| out.flush());
}

fn error_response(id: Value, code: ErrorCode, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code as i32, "message": message}})
}

/// What one frame held.
#[derive(Debug)]
pub enum Frame {
    Message(Message),
    /// Answered (or, without an id, logged) and skipped.
    Bad(Option<Value>),
}

/// The largest message body the server reads: far above any KDL file an
/// editor sends, far below what would exhaust memory.
pub const MAX_MESSAGE: usize = 64 << 20;

fn read_all(input: &mut io::BufReader<impl io::Read>, incoming: &Sender<Message>) {
    let mut framer = Framer::new(input);
    loop {
        let body = match framer.next_frame() {
            Some(Ok(body)) => body,
            Some(Err(reply)) => {
                write_raw(&reply);
                continue;
            }
            // End of input: the main loop hears of it when this thread's
            // sender is dropped.
            None => return,
        };
        match decode(&body) {
            Frame::Message(msg) => {
                let exit =
                    matches!(&msg, Message::Notification(n) if n.method == lsp_types::notification::Exit::METHOD);
                if incoming.send(msg).is_err() || exit {
                    return;
                }
            }
            Frame::Bad(Some(reply)) => write_raw(&reply),
            Frame::Bad(None) => {}
        }
    }
}

/// Splits the input into frames, recovering from wrong headers: a frame
/// that cannot be read is answered and the reader resynchronises on the
/// next `Content-Length` header, so one bad message never ends the server.
struct Framer<'a, R> {
    input: &'a mut io::BufReader<R>,
    /// Bytes read past the end of a frame whose `Content-Length` was too
    /// large: the start of the next frame, read again before `input`.
    pushed_back: Vec<u8>,
    /// The last frame was refused: skip to the next header first (after
    /// its answer went out, since the editor may wait for it).
    resync: bool,
}

const HEADER: &[u8] = b"content-length:";

/// Where a `Content-Length:` header starts in `bytes`, if anywhere.
fn header_at(bytes: &[u8]) -> Option<usize> {
    bytes.windows(HEADER.len()).position(|w| w.eq_ignore_ascii_case(HEADER))
}

impl<'a, R: io::Read> Framer<'a, R> {
    fn new(input: &'a mut io::BufReader<R>) -> Self {
        Framer { input, pushed_back: Vec::new(), resync: false }
    }

    /// One line, `\n` included; empty at the end of input.
    fn line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        if let Some(end) = self.pushed_back.iter().position(|&b| b == b'\n') {
            line.extend(self.pushed_back.drain(..=end));
            return line;
        }
        line.append(&mut self.pushed_back);
        if let Err(e) = self.input.read_until(b'\n', &mut line) {
            log(&format!("cannot read from the editor: {e}"));
        }
        line
    }

    /// Up to `want` bytes: what is pushed back, else what the input has
    /// at hand (at least one byte unless it ended).
    fn chunk(&mut self, want: usize) -> Vec<u8> {
        if !self.pushed_back.is_empty() {
            let n = want.min(self.pushed_back.len());
            return self.pushed_back.drain(..n).collect();
        }
        let Ok(avail) = self.input.fill_buf() else { return Vec::new() };
        let n = want.min(avail.len());
        let out = avail[..n].to_vec();
        self.input.consume(n);
        out
    }

    /// The next frame's body, or the error reply for a frame that could
    /// not be read; `None` at the end of input.
    fn next_frame(&mut self) -> Option<Result<Vec<u8>, Value>> {
        if std::mem::take(&mut self.resync) {
            self.skip_to_header();
        }
        let mut length: Option<Result<usize, String>> = None;
        let mut seen = false;
        loop {
            let raw = self.line();
            if raw.is_empty() {
                if seen {
                    log("the input ended inside a message header");
                }
                return None;
            }
            let text = String::from_utf8_lossy(&raw);
            let line = text.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if seen {
                    break;
                }
                continue; // blank lines between frames: padding of a too-large length
            }
            // A header line may start with the leftover of a frame whose
            // Content-Length was too small: resynchronise on the header.
            let line = match header_at(line.as_bytes()) {
                Some(0) | None => line,
                Some(at) => {
                    log("skipped bytes before a Content-Length header (the previous message's length was wrong)");
                    &line[at..]
                }
            };
            let Some((name, value)) = line.split_once(':').filter(|(n, _)| is_header_name(n)) else {
                log(&format!("skipped a line that is no header: `{}`", clip(line)));
                continue;
            };
            seen = true;
            if name.trim().eq_ignore_ascii_case("content-length") {
                let value = value.trim();
                let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                length = Some(match value.parse::<usize>().ok().filter(|&n| n <= MAX_MESSAGE) {
                    Some(n) => Ok(n),
                    None if digits => {
                        Err(format!("a message of {} bytes is over the limit of {MAX_MESSAGE} bytes", clip(value)))
                    }
                    None => Err(format!("bad Content-Length `{}`", clip(value))),
                });
            }
        }
        let length = match length {
            Some(Ok(n)) => n,
            Some(Err(why)) => return Some(Err(self.refuse(&why))),
            None => return Some(Err(self.refuse("a message without Content-Length"))),
        };
        Some(Ok(self.body(length)))
    }

    /// Answers a frame that cannot be read; the next read skips to the
    /// next header.
    fn refuse(&mut self, why: &str) -> Value {
        log(&format!("{why}; skipping to the next Content-Length header"));
        self.resync = true;
        error_response(Value::Null, ErrorCode::InvalidRequest, why)
    }

    /// Drops input up to the next line holding a `Content-Length` header.
    fn skip_to_header(&mut self) {
        loop {
            let line = self.line();
            if line.is_empty() {
                return;
            }
            if let Some(at) = header_at(&line) {
                let mut rest = line[at..].to_vec();
                rest.append(&mut self.pushed_back);
                self.pushed_back = rest;
                return;
            }
        }
    }

    /// Reads a body of `length` bytes. When the declared length is too
    /// large the body runs into the next frame's header (which is cut off
    /// and read next), or the editor stops sending while it waits for an
    /// answer: a complete JSON value read at that point is the body.
    fn body(&mut self, length: usize) -> Vec<u8> {
        let mut body = Vec::with_capacity(length.min(1 << 20));
        while body.len() < length {
            let chunk = self.chunk(length - body.len());
            if chunk.is_empty() {
                break; // the input ended: decode what came
            }
            let mut scan_from = body.len().saturating_sub(HEADER.len());
            body.extend_from_slice(&chunk);
            // A header counts only where a whole JSON message ends before
            // it: the words inside a document's text do not.
            let mut cut = None;
            while let Some(at) = header_at(&body[scan_from..]).map(|i| i + scan_from) {
                if at > 0 && serde_json::from_slice::<serde::de::IgnoredAny>(&body[..at]).is_ok() {
                    cut = Some(at);
                    break;
                }
                scan_from = at + 1;
            }
            if let Some(at) = cut {
                let mut rest = body.split_off(at);
                rest.append(&mut self.pushed_back);
                self.pushed_back = rest;
                log("a message's Content-Length runs into the next message; read up to its header");
                break;
            }
            if self.pushed_back.is_empty()
                && self.input.buffer().is_empty()
                && body.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'}')
                && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok()
            {
                break; // nothing more at hand, and a whole message read
            }
        }
        body
    }
}

/// A header name: letters, digits and `-`.
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A bounded piece of input for the log.
fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

/// A frame's body as a message, or the error response it deserves.
pub fn decode(body: &[u8]) -> Frame {
    let text = match std::str::from_utf8(body) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(e) => {
            log(&format!("a message is not UTF-8 ({e}); its invalid bytes are read as U+FFFD"));
            String::from_utf8_lossy(body)
        }
    };
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            log(&format!("a message is not JSON ({e}); answered with a parse error"));
            return Frame::Bad(Some(error_response(Value::Null, ErrorCode::ParseError, &format!("not JSON: {e}"))));
        }
    };
    // A notification (a method, no id) is never answered, even when bad;
    // anything else that is no message is, with its id when that is a
    // valid one (a string or an integer) and `null` otherwise.
    let notification = value.get("method").is_some() && value.get("id").is_none();
    let id = match value.get("id") {
        Some(id @ Value::String(_)) => id.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Value::Number(n.clone()),
        _ => Value::Null,
    };
    let valid_id = value.get("id").is_none_or(|i| i.is_string() || i.is_i64() || i.is_u64());
    match serde_json::from_value::<Message>(value).ok().filter(|_| valid_id) {
        Some(msg) => Frame::Message(msg),
        None => {
            log("a message is not a JSON-RPC request, response or notification");
            Frame::Bad((!notification).then(|| {
                error_response(id, ErrorCode::InvalidRequest, "not a JSON-RPC request, response or notification")
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame of `input`: a body, or the error reply for a bad one.
    fn frames(input: &[u8]) -> Vec<Result<Vec<u8>, Value>> {
        let mut r = io::BufReader::new(input);
        let mut framer = Framer::new(&mut r);
        std::iter::from_fn(|| framer.next_frame()).collect()
    }

    fn body(f: &Result<Vec<u8>, Value>) -> &str {
        std::str::from_utf8(f.as_ref().expect("a body")).expect("UTF-8")
    }

    fn code(f: &Result<Vec<u8>, Value>) -> Value {
        f.as_ref().expect_err("an error reply")["error"]["code"].clone()
    }

    #[test]
    fn frames_and_their_ends() {
        let f = frames(b"Content-Length: 2\r\n\r\n{}content-length:3\r\nContent-Type: x\r\n\r\n[1]");
        assert_eq!(f.len(), 2);
        assert_eq!((body(&f[0]), body(&f[1])), ("{}", "[1]"));
        assert!(frames(b"").is_empty());
        assert!(frames(b"Content-Length: 2\r\n").is_empty(), "input ending in a header");
    }

    #[test]
    fn lengths_too_small_or_too_large_resynchronise_on_the_next_header() {
        let next = b"Content-Length: 7\r\n\r\n{\"a\":1}";
        // Too small: the rest of the body is skipped up to the next header.
        let mut input = b"Content-Length: 5\r\n\r\n{\"a\":\"bcd\"}".to_vec();
        input.extend_from_slice(next);
        let f = frames(&input);
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!((body(&f[0]), body(&f[1])), ("{\"a\":", "{\"a\":1}"));
        // Too large: the body stops at the next header, which is read next.
        let mut input = b"Content-Length: 40\r\n\r\n{\"b\":2}".to_vec();
        input.extend_from_slice(next);
        input.extend_from_slice(b"                                        ");
        let f = frames(&input);
        assert_eq!((body(&f[0]), body(&f[1])), ("{\"b\":2}", "{\"a\":1}"));
        // Too large, and nothing follows while the editor waits: the whole
        // JSON value read so far is the message.
        let f = frames(b"Content-Length: 400\r\n\r\n{\"b\":2}");
        assert_eq!(body(&f[0]), "{\"b\":2}");
    }

    #[test]
    fn a_header_inside_a_document_is_text() {
        let body = br#"{"text":"// Content-Length: 5\n"}"#;
        let mut input = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        input.extend_from_slice(body);
        let f = frames(&input);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].as_ref().unwrap(), body);
    }

    #[test]
    fn huge_or_missing_lengths_are_refused_without_reading_them() {
        let next = b"Content-Length: 2\r\n\r\n{}";
        for header in [
            &b"Content-Length: 99999999999999\r\n\r\n"[..],
            b"Content-Length: 4000000000\r\n\r\n",
            b"Content-Length: x\r\n\r\n",
            b"Content-Type: y\r\n\r\n",
        ] {
            let mut input = header.to_vec();
            input.extend_from_slice(b"{\"junk\": 1}\r\n");
            input.extend_from_slice(next);
            let f = frames(&input);
            assert_eq!(f.len(), 2, "{f:?}");
            assert_eq!(code(&f[0]), -32600, "{f:?}");
            assert_eq!(f[0].as_ref().unwrap_err()["id"], Value::Null);
            assert_eq!(body(&f[1]), "{}");
        }
    }

    #[test]
    fn bad_bodies_get_json_rpc_errors() {
        let Frame::Bad(Some(r)) = decode(b"{bad}") else { panic!("not answered") };
        assert_eq!(r["error"]["code"], -32700);
        assert_eq!(r["id"], Value::Null);
        let Frame::Bad(Some(r)) = decode(br#"{"id": 7, "params": {}}"#) else { panic!("not answered") };
        assert_eq!((r["id"].clone(), r["error"]["code"].clone()), (json!(7), json!(-32600)));
        for body in [&br#"{"params": {}}"#[..], b"[1,2,3]", b"null", br#"{"jsonrpc":"2.0","id":1.5,"method":"m"}"#] {
            let Frame::Bad(Some(r)) = decode(body) else { panic!("not answered: {body:?}") };
            assert_eq!((r["id"].clone(), r["error"]["code"].clone()), (Value::Null, json!(-32600)));
        }
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","method":"m","params":7}"#),
            Frame::Bad(None) | Frame::Message(_)
        ));
        let body = b"{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"text\":\"a\xffb\"}}";
        let Frame::Message(Message::Notification(n)) = decode(body) else { panic!("not read") };
        assert_eq!(n.params["text"], "a\u{fffd}b");
    }
}
