//! A small blocking client: connect over TCP or a Unix socket, say `hello`, send
//! requests (one at a time or pipelined), and read replies and events.
//!
//! Events that arrive while [`Client::call`] waits for its reply are kept, in order, for
//! [`Client::next_event`]; replies to other pipelined requests are kept for
//! [`Client::wait_reply`].

use std::{
    collections::VecDeque,
    io::{self, BufReader, BufWriter, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    path::Path,
    time::Duration,
};

use serde::de::DeserializeOwned;

use crate::{
    DEFAULT_MAX_FRAME_BYTES, DecodeError, ErrorBody, Event, FrameError, Hello, HelloResult,
    PROTOCOL_VERSION, Reply, Request, ServerFrame, decode_server_frame, frame::read_frame,
};

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the server closed the connection")]
    Closed,
}

impl ClientError {
    /// The server's error reply, if that is what this is.
    pub fn server_error(&self) -> Option<&ErrorBody> {
        match self {
            ClientError::Decode(DecodeError::Server(error)) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> Self {
        ClientError::Frame(FrameError::Io(error))
    }
}

/// A stream a client can read and write from two handles.
pub trait Duplex: Read + Write + Sized {
    fn try_clone_stream(&self) -> io::Result<Self>;
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Closes the writing half: the server sees the end of the stream.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Duplex for TcpStream {
    fn try_clone_stream(&self) -> io::Result<Self> {
        self.try_clone()
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(unix)]
impl Duplex for std::os::unix::net::UnixStream {
    fn try_clone_stream(&self) -> io::Result<Self> {
        self.try_clone()
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// A connection to a GAMESA ingress server.
#[derive(Debug)]
pub struct Client<S: Duplex> {
    reader: BufReader<S>,
    writer: BufWriter<S>,
    next_id: u64,
    /// The largest frame this client accepts from the server.
    max_frame_bytes: u32,
    body: Vec<u8>,
    events: VecDeque<Event>,
    replies: VecDeque<Reply>,
}

impl Client<TcpStream> {
    pub fn connect_tcp(address: impl ToSocketAddrs) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        Client::new(stream)
    }
}

#[cfg(unix)]
impl Client<std::os::unix::net::UnixStream> {
    pub fn connect_unix(path: impl AsRef<Path>) -> Result<Self, ClientError> {
        Client::new(std::os::unix::net::UnixStream::connect(path)?)
    }
}

impl<S: Duplex> Client<S> {
    pub fn new(stream: S) -> Result<Self, ClientError> {
        let reader = BufReader::with_capacity(64 * 1024, stream.try_clone_stream()?);
        Ok(Client {
            reader,
            writer: BufWriter::with_capacity(64 * 1024, stream),
            next_id: 1,
            // Server frames (a telemetry frame, a deep book) may exceed a request's cap.
            max_frame_bytes: 16 * DEFAULT_MAX_FRAME_BYTES,
            body: Vec::new(),
            events: VecDeque::new(),
            replies: VecDeque::new(),
        })
    }

    /// The stream, for timeouts and shutdown.
    pub fn stream(&self) -> &S {
        self.writer.get_ref()
    }

    /// Fails reads that wait longer than `timeout` (`None`: wait forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.writer.get_ref().set_read_timeout(timeout)?;
        Ok(())
    }

    /// Says `hello` with this crate's protocol version.
    pub fn hello(&mut self, client: &str, token: &str) -> Result<HelloResult, ClientError> {
        self.call_as(&Request::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            client: client.to_owned(),
            token: token.to_owned(),
        }))
    }

    /// Buffers `request` with a fresh id and returns the id; [`Client::flush`] sends.
    pub fn queue(&mut self, request: &Request) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut bytes = Vec::with_capacity(96);
        request.encode(id, &mut bytes)?;
        self.writer.write_all(&bytes)?;
        Ok(id)
    }

    /// Writes raw bytes (tests use it to send what no well-behaved client would).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.write_all(bytes)?;
        self.flush()
    }

    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.writer.flush()?;
        Ok(())
    }

    /// Sends `request` and returns its id without waiting for the reply.
    pub fn send(&mut self, request: &Request) -> Result<u64, ClientError> {
        let id = self.queue(request)?;
        self.flush()?;
        Ok(id)
    }

    /// Sends `request` and waits for its reply.
    pub fn call(&mut self, request: &Request) -> Result<Reply, ClientError> {
        let id = self.send(request)?;
        self.wait_reply(id)
    }

    /// Sends `request` and returns its result as `T` (an error reply is an error).
    pub fn call_as<T: DeserializeOwned>(&mut self, request: &Request) -> Result<T, ClientError> {
        Ok(self.call(request)?.into_result()?)
    }

    /// Reads until the reply to `id` arrives; other frames are kept.
    pub fn wait_reply(&mut self, id: u64) -> Result<Reply, ClientError> {
        if let Some(at) = self.replies.iter().position(|reply| reply.id == Some(id))
            && let Some(reply) = self.replies.remove(at)
        {
            return Ok(reply);
        }
        loop {
            match self.read_frame()? {
                ServerFrame::Reply(reply) if reply.id == Some(id) || reply.id.is_none() => {
                    return Ok(reply);
                }
                ServerFrame::Reply(reply) => self.replies.push_back(reply),
                ServerFrame::Event(event) => self.events.push_back(event),
            }
        }
    }

    /// The next event: one kept earlier, or the next one read. Replies read meanwhile
    /// are kept.
    pub fn next_event(&mut self) -> Result<Event, ClientError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(event);
        }
        loop {
            match self.read_frame()? {
                ServerFrame::Event(event) => return Ok(event),
                ServerFrame::Reply(reply) => self.replies.push_back(reply),
            }
        }
    }

    /// The next frame from the server, kept ones first (events, then replies).
    pub fn next_frame(&mut self) -> Result<ServerFrame, ClientError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(ServerFrame::Event(event));
        }
        if let Some(reply) = self.replies.pop_front() {
            return Ok(ServerFrame::Reply(reply));
        }
        self.read_frame()
    }

    fn read_frame(&mut self) -> Result<ServerFrame, ClientError> {
        if !read_frame(&mut self.reader, self.max_frame_bytes, &mut self.body)? {
            return Err(ClientError::Closed);
        }
        Ok(decode_server_frame(&self.body)?)
    }
}
