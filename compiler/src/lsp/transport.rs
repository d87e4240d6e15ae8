//! JSON-RPC framing on stdin and stdout, forgiving of bad messages.
//!
//! `lsp-server`'s own stdio transport stops at the first message it cannot
//! decode, which ends the server without a word. Here a body that is not
//! JSON is answered with a Parse error (-32700, id `null`) as JSON-RPC 2.0
//! says, a JSON value that is no message with Invalid Request (-32600),
//! and the server keeps serving. Bytes that are not UTF-8 (a plugin's
//! buffer in another encoding) are read as U+FFFD, so the document still
//! gets diagnostics. Only a broken frame (no `Content-Length`, input cut
//! short) ends the reader, and everything that ends the server is said on
//! stderr, which editors keep in their language-server log.

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
        .spawn(move || read_all(&mut io::stdin().lock(), &incoming))
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

fn read_all(input: &mut impl BufRead, incoming: &Sender<Message>) {
    loop {
        let body = match read_frame(input) {
            Ok(Some(body)) => body,
            // End of input: the main loop hears of it when this thread's
            // sender is dropped.
            Ok(None) => return,
            Err(e) => {
                log(&format!("cannot read a message from the editor, stopping: {e}"));
                return;
            }
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

/// Reads one frame's body; `None` at the end of input before a frame.
fn read_frame(input: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut length: Option<usize> = None;
    let mut started = false;
    loop {
        let mut line = Vec::new();
        if input.read_until(b'\n', &mut line)? == 0 {
            return if started {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the input ended inside a header"))
            } else {
                Ok(None)
            };
        }
        started = true;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("malformed header `{line}`")));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse().map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad Content-Length `{}`", value.trim()))
            })?);
        }
    }
    let length =
        length.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a message without Content-Length"))?;
    let mut body = vec![0; length];
    input.read_exact(&mut body)?;
    Ok(Some(body))
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
    let id = value.get("id").cloned();
    match serde_json::from_value::<Message>(value) {
        Ok(msg) => Frame::Message(msg),
        Err(e) => {
            log(&format!("a message is not a JSON-RPC request, response or notification ({e})"));
            Frame::Bad(
                id.map(|id| error_response(id, ErrorCode::InvalidRequest, &format!("not a JSON-RPC message: {e}"))),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> Vec<io::Result<Option<Vec<u8>>>> {
        let mut r = io::BufReader::new(input);
        let mut out = Vec::new();
        loop {
            let f = read_frame(&mut r);
            let end = !matches!(f, Ok(Some(_)));
            out.push(f);
            if end {
                return out;
            }
        }
    }

    #[test]
    fn frames_and_their_ends() {
        let f = frames(b"Content-Length: 2\r\n\r\n{}content-length:3\r\nContent-Type: x\r\n\r\n[1]");
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].as_ref().unwrap().as_deref(), Some(&b"{}"[..]));
        assert_eq!(f[1].as_ref().unwrap().as_deref(), Some(&b"[1]"[..]));
        assert!(matches!(f[2], Ok(None)));
        assert!(frames(b"Content-Type: x\r\n\r\n{}")[0].is_err());
        assert!(frames(b"Content-Length: 10\r\n\r\n{}")[0].is_err());
    }

    #[test]
    fn bad_bodies_get_json_rpc_errors() {
        let Frame::Bad(Some(r)) = decode(b"{bad}") else { panic!("not answered") };
        assert_eq!(r["error"]["code"], -32700);
        assert_eq!(r["id"], Value::Null);
        let Frame::Bad(Some(r)) = decode(br#"{"id": 7, "params": {}}"#) else { panic!("not answered") };
        assert_eq!((r["id"].clone(), r["error"]["code"].clone()), (json!(7), json!(-32600)));
        assert!(matches!(decode(br#"{"params": {}}"#), Frame::Bad(None)));
        let body = b"{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"text\":\"a\xffb\"}}";
        let Frame::Message(Message::Notification(n)) = decode(body) else { panic!("not read") };
        assert_eq!(n.params["text"], "a\u{fffd}b");
    }
}
