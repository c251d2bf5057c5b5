//! One task per connection, from the upgrade to the last byte: it reads
//! client frames into the session actor and writes the session's outbox into
//! the socket.
//!
//! Memory is what an idle connection costs, so the task holds no buffer
//! while nothing happens. It waits for the socket to become readable without
//! a buffer, reads into one sized for the burst at hand, and frees it as soon
//! as every whole frame in it has gone to the session. It writes one frame at
//! a time straight from the outbox item (the frame's header sits on the
//! stack; the payload is the item's own reference-counted bytes), so there is
//! no write buffer either: the outbox, bounded in bytes, is the only queue.
//!
//! Backpressure: the next frame goes to the session only once it has handled
//! the last (`Addr::send` resolves when the handler returns; a session busy
//! with a backend call does not take its mailbox), and the socket is not read
//! meanwhile. A client that floods is slowed by TCP, not buffered.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::dev::Request as MailboxRequest;
use actix::Addr;
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::frames::{close_payload, server_header, Incoming, OpCode, Reader};
use crate::outbox::{Outbox, Outgoing, Step, CLOSE_FRAME_TIMEOUT_MS};
use crate::session::{SocketDone, WsSession};

/// How much room a read makes in the read buffer (at least): enough for a
/// few typical frames in one system call. The buffer is freed once drained.
const READ_CHUNK_BYTES: usize = 4096;

/// Frames written back to back before the task lets others run.
const WRITE_BATCH_FRAMES: u32 = 64;

/// How long the connection waits for the client's end after its close frame
/// went out.
const LINGER_MS: u64 = 1_000;

/// A frame being written: its header and payload, and how much of them has
/// gone out.
struct Pending {
    head: [u8; 10],
    head_len: usize,
    payload: Bytes,
    written: usize,
    is_close: bool,
}

impl Pending {
    fn new(opcode: OpCode, payload: Bytes) -> Pending {
        let (head, head_len) = server_header(opcode, payload.len());
        Pending { head, head_len, payload, written: 0, is_close: opcode == OpCode::Close }
    }

    fn of(item: Outgoing) -> Pending {
        match item {
            Outgoing::Text(text) => Pending::new(OpCode::Text, text.into_bytes()),
            Outgoing::Ping(payload) => Pending::new(OpCode::Ping, payload),
            Outgoing::Pong(payload) => Pending::new(OpCode::Pong, payload),
        }
    }

    /// Writes what the socket takes now. `Ok(true)` once all of it is out.
    fn write(&mut self, io: &TcpStream) -> io::Result<bool> {
        let total = self.head_len + self.payload.len();
        while self.written < total {
            let head = &self.head[self.head_len.min(self.written)..self.head_len];
            let payload = &self.payload[self.written.saturating_sub(self.head_len)..];
            match io.try_write_vectored(&[IoSlice::new(head), IoSlice::new(payload)]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) => return Err(err),
            }
        }
        Ok(true)
    }
}

/// Serves the connection until it is over; `read_buf` holds what the client
/// sent after its handshake, if anything.
pub async fn run(
    io: TcpStream,
    read_buf: BytesMut,
    outbox: Arc<Outbox>,
    session: Addr<WsSession>,
    max_frame_bytes: usize,
) {
    let mut conn = Conn {
        io,
        read_buf,
        reader: Reader::new(max_frame_bytes),
        outbox,
        session,
        pending: None,
        in_flight: None,
        reading: true,
        close_deadline: None,
    };
    let closed = conn.serve().await;
    conn.outbox.finish();
    conn.session.do_send(SocketDone);
    if closed {
        // Our close frame is out: let the client answer with its own and
        // end the TCP connection first (RFC 6455 §7.1.1), within a second.
        let _ = tokio::time::timeout(Duration::from_millis(LINGER_MS), linger(conn.io)).await;
    }
}

struct Conn {
    io: TcpStream,
    read_buf: BytesMut,
    reader: Reader,
    outbox: Arc<Outbox>,
    session: Addr<WsSession>,
    /// The frame being written, if any.
    pending: Option<Pending>,
    /// The client frame the session is handling.
    in_flight: Option<Pin<Box<MailboxRequest<WsSession, Incoming>>>>,
    /// False once the client closed, broke the protocol or went away.
    reading: bool,
    /// Set when the close frame is taken: the connection ends by then even
    /// if a client that does not read never lets it out.
    close_deadline: Option<Instant>,
}

impl Conn {
    /// Returns whether the connection ended with our close frame sent.
    async fn serve(&mut self) -> bool {
        let mut written_in_a_row = 0;
        loop {
            if self.pending.is_none() && self.close_deadline.is_none() {
                self.take_next();
            }
            if let Some(pending) = &mut self.pending {
                match pending.write(&self.io) {
                    Ok(true) if pending.is_close => return true,
                    Ok(true) => {
                        self.pending = None;
                        written_in_a_row += 1;
                        if written_in_a_row == WRITE_BATCH_FRAMES {
                            // A socket that takes everything must not keep
                            // this worker from its other connections.
                            written_in_a_row = 0;
                            tokio::task::yield_now().await;
                        }
                        continue;
                    }
                    Ok(false) => {}
                    Err(_) => return false,
                }
            }
            if self.reading && self.in_flight.is_none() {
                if let Some(incoming) = self.reader.next(&mut self.read_buf) {
                    self.reading = !self.reader.ended();
                    self.in_flight = Some(Box::pin(self.session.send(incoming)));
                }
                if self.read_buf.is_empty() && self.read_buf.capacity() > 0 {
                    // Every whole frame is out of it: give the memory back.
                    self.read_buf = BytesMut::new();
                }
            }
            match self.wait().await {
                Event::Aborted => self.pending = None,
                Event::Writable | Event::Woken => {}
                Event::Handled => self.in_flight = None,
                Event::Readable => {
                    if !self.read() {
                        return false;
                    }
                }
                Event::Gone | Event::CloseTimedOut => return false,
            }
        }
    }

    /// Waits for the next thing to do.
    async fn wait(&mut self) -> Event {
        let abortable = self.pending.as_ref().is_some_and(|p| p.written == 0 && !p.is_close);
        let writing = self.pending.is_some();
        let waking = !writing && self.close_deadline.is_none();
        let reading = self.reading && self.in_flight.is_none();
        let deadline = self.close_deadline;
        let (io, outbox, in_flight) = (&self.io, &self.outbox, &mut self.in_flight);
        tokio::select! {
            biased;
            () = outbox.aborted(), if abortable => Event::Aborted,
            ready = io.writable(), if writing => ready.map_or(Event::Gone, |()| Event::Writable),
            _ = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => Event::Handled,
            ready = io.readable(), if reading => ready.map_or(Event::Gone, |()| Event::Readable),
            () = outbox.woken(), if waking => Event::Woken,
            // Built only when polled: a timer per wake-up would be work on
            // every delivery.
            () = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => {
                Event::CloseTimedOut
            }
        }
    }

    /// Takes the next item of the outbox into `pending`.
    fn take_next(&mut self) {
        match self.outbox.next_step() {
            Step::Send(item) => self.pending = Some(Pending::of(item)),
            Step::Close(code, reason) => {
                // The session is over from here; the close frame may still
                // take up to CLOSE_FRAME_TIMEOUT_MS to get out.
                self.outbox.finish();
                self.session.do_send(SocketDone);
                self.pending = Some(Pending::new(OpCode::Close, close_payload(code.code(), reason)));
                self.close_deadline = Some(Instant::now() + Duration::from_millis(CLOSE_FRAME_TIMEOUT_MS));
                self.reading = false;
            }
            Step::Wait => {}
        }
    }

    /// Reads what the socket has. False when the client has gone.
    fn read(&mut self) -> bool {
        if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK_BYTES / 2 {
            self.read_buf.reserve(READ_CHUNK_BYTES);
        }
        match self.io.try_read_buf(&mut self.read_buf) {
            Ok(0) => false,
            Ok(_) => true,
            Err(err) => err.kind() == io::ErrorKind::WouldBlock,
        }
    }
}

/// What woke the connection.
enum Event {
    /// The outbox was dropped to close at once.
    Aborted,
    Writable,
    /// The session has handled the frame it was given.
    Handled,
    Readable,
    /// Something was queued, or a close asked for.
    Woken,
    /// The socket failed.
    Gone,
    CloseTimedOut,
}

/// Half-closes the socket and reads (and drops) what the client still sends
/// until it closes its end.
async fn linger(mut io: TcpStream) {
    let _ = io.shutdown().await;
    let mut sink = [0u8; 256];
    loop {
        if io.readable().await.is_err() {
            return;
        }
        match io.try_read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}
