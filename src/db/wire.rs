//! A bare text-protocol connection for the dump's row stream.
//!
//! The client library turns every cell into a `Vec<u8>` of its own; on
//! billing rows that allocation and bookkeeping was most of a copy's CPU
//! (measured: 0.93 against 0.51 s of client CPU for one table read both
//! ways, the same bytes out). Here the rows of a `SELECT` come out as spans
//! of one packet buffer that is reused for every row.
//!
//! Only what the dump needs: connect and authenticate
//! (`mysql_native_password`, and `caching_sha2_password` when the server
//! has the account cached), plain statements, one result set at a time.
//! The packets are framed here; the handshake's packets and the password
//! scrambles are mysql_common's, the same code the client library runs.
//! Anything else (another authentication plugin, a server that wants the
//! full `caching_sha2_password` exchange) is [`WireError::Unsupported`],
//! and the caller reads through the client library instead.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use mysql::consts::{CapabilityFlags, ColumnType, StatusFlags};
use mysql::Opts;
use mysql_common::constants::MariadbCapabilities;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{
    AuthPlugin, AuthSwitchRequest, Column, HandshakePacket, HandshakeResponse,
};
use mysql_common::proto::MySerialize;

/// The largest packet (after joining its 16 MiB pieces) read: the
/// server's own ceiling for `max_allowed_packet`.
const MAX_PACKET: usize = 1 << 30;

/// One piece of a packet on the wire is at most this long.
const PIECE: usize = 0xFF_FFFF;

/// Why a connection or a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Something this reader does not speak; the client library may.
    #[error("not supported by the direct reader: {0}")]
    Unsupported(String),
    /// The server answered with an error packet.
    #[error("ERROR {code} ({state}): {message}")]
    Server {
        code: u16,
        state: String,
        message: String,
    },
    /// The server sent something that is not the protocol.
    #[error("malformed reply from the server: {0}")]
    Protocol(&'static str),
    #[error(transparent)]
    Io(#[from] io::Error),
}

type Result<T> = std::result::Result<T, WireError>;

/// A TCP or a local socket.
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

/// One cell of a row: where its bytes are in the row, `None` for NULL.
pub type Span = Option<(usize, usize)>;

/// A row: its cells as slices of one buffer.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    data: &'a [u8],
    spans: &'a [Span],
}

impl<'a> Row<'a> {
    /// A row over `data`, cut by `spans` (each within `data`).
    pub fn new(data: &'a [u8], spans: &'a [Span]) -> Row<'a> {
        Row { data, spans }
    }

    /// Cell `i`'s bytes; `None` for NULL (or past the last cell).
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let (start, end) = (*self.spans.get(i)?)?;
        Some(&self.data[start..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<&'a [u8]>> + '_ {
        (0..self.spans.len()).map(|i| self.get(i))
    }
}

/// An open connection.
pub struct Conn {
    io: BufReader<Stream>,
    /// The next packet's sequence number.
    seq: u8,
    /// The last packet read.
    buf: Vec<u8>,
    /// A result set was left unread: the stream is out of step.
    broken: bool,
}

impl Conn {
    /// Connects where `opts` say and authenticates, waiting at most
    /// `timeout` for the server at each step of the handshake.
    pub fn connect(opts: &Opts, timeout: Duration) -> Result<Conn> {
        let stream = match opts.get_socket() {
            Some(path) => Stream::Unix(UnixStream::connect(path)?),
            None => {
                let host = opts.get_ip_or_hostname();
                let addrs = (&*host, opts.get_tcp_port()).to_socket_addrs()?;
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
                let mut found = None;
                for addr in addrs {
                    match TcpStream::connect_timeout(&addr, timeout) {
                        Ok(s) => {
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                let s = found.ok_or(last)?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
        };
        stream.set_read_timeout(Some(timeout))?;
        let mut conn = Conn {
            io: BufReader::with_capacity(256 << 10, stream),
            seq: 0,
            buf: Vec::new(),
            broken: false,
        };
        conn.handshake(opts)?;
        conn.io.get_ref().set_read_timeout(None)?;
        Ok(conn)
    }

    fn handshake(&mut self, opts: &Opts) -> Result<()> {
        self.read_packet()?;
        if self.buf.first() == Some(&0xFF) {
            return Err(server_error(&self.buf));
        }
        let hp = ParseBuf(&self.buf)
            .parse::<HandshakePacket>(())
            .map_err(|_| WireError::Protocol("a bad handshake"))?;
        if hp.protocol_version() != 10
            || !hp
                .capabilities()
                .contains(CapabilityFlags::CLIENT_PROTOCOL_41)
        {
            return Err(WireError::Unsupported("a pre-4.1 server".into()));
        }
        let mut nonce = hp.scramble_1_ref().to_vec();
        nonce.extend_from_slice(hp.scramble_2_ref().unwrap_or_default());
        nonce.resize(20, 0);
        let mut plugin = match hp.auth_plugin() {
            Some(AuthPlugin::CachingSha2Password) => AuthPlugin::CachingSha2Password,
            _ => AuthPlugin::MysqlNativePassword,
        };
        let db = opts.get_db_name().filter(|d| !d.is_empty());
        let mut wanted = CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_LONG_PASSWORD
            | CapabilityFlags::CLIENT_LONG_FLAG
            | CapabilityFlags::CLIENT_TRANSACTIONS
            | CapabilityFlags::CLIENT_PLUGIN_AUTH;
        if db.is_some() {
            wanted |= CapabilityFlags::CLIENT_CONNECT_WITH_DB;
        }
        let capabilities = hp.capabilities() & wanted;
        if db.is_some() && !capabilities.contains(CapabilityFlags::CLIENT_CONNECT_WITH_DB) {
            return Err(WireError::Unsupported(
                "a server without CONNECT_WITH_DB".into(),
            ));
        }
        let version = hp.server_version_parsed().unwrap_or((0, 0, 0));
        let pass = opts.get_pass();
        let data = plugin.gen_data(pass, &nonce).map(|d| d.into_owned());
        let response = HandshakeResponse::new(
            data.as_deref(),
            version,
            opts.get_user().map(str::as_bytes),
            db.map(str::as_bytes),
            Some(plugin.clone()),
            capabilities,
            None,
            MAX_PACKET as u32,
        )
        // No MariaDB extensions: with cached metadata a result set's
        // shape changes.
        .with_mariadb_ext_capabilities(MariadbCapabilities::empty());
        let mut out = Vec::new();
        response.serialize(&mut out);
        self.write_packet(&out)?;
        let mut switched = false;
        loop {
            self.read_packet()?;
            match (self.buf.first(), &plugin) {
                (Some(0x00), _) => return Ok(()),
                (Some(0xFF), _) => return Err(server_error(&self.buf)),
                (Some(0xFE), _) if !switched => {
                    switched = true;
                    let request = ParseBuf(&self.buf)
                        .parse::<AuthSwitchRequest>(())
                        .map_err(|_| WireError::Protocol("a bad authentication switch"))?;
                    plugin = match request.auth_plugin() {
                        AuthPlugin::MysqlNativePassword => AuthPlugin::MysqlNativePassword,
                        AuthPlugin::CachingSha2Password => AuthPlugin::CachingSha2Password,
                        other => {
                            return Err(WireError::Unsupported(format!(
                                "the authentication plugin {}",
                                String::from_utf8_lossy(other.as_bytes())
                            )))
                        }
                    };
                    let nonce = request.plugin_data().to_vec();
                    let data = plugin.gen_data(pass, &nonce).map(|d| d.into_owned());
                    let mut out = Vec::new();
                    if let Some(data) = data {
                        data.serialize(&mut out);
                    }
                    self.write_packet(&out)?;
                }
                (Some(0x01), AuthPlugin::CachingSha2Password) => match self.buf.get(1) {
                    // Fast authentication succeeded: an OK packet follows.
                    Some(0x03) => {}
                    Some(0x04) => {
                        return Err(WireError::Unsupported(
                            "caching_sha2_password's full authentication".into(),
                        ))
                    }
                    _ => return Err(WireError::Protocol("a bad authentication reply")),
                },
                _ => return Err(WireError::Protocol("an unexpected authentication reply")),
            }
        }
    }

    /// Reads one packet (joined from its pieces) into `buf`.
    fn read_packet(&mut self) -> Result<()> {
        self.buf.clear();
        loop {
            let mut header = [0u8; 4];
            self.io.read_exact(&mut header)?;
            let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
            if header[3] != self.seq {
                return Err(WireError::Protocol("packets out of order"));
            }
            self.seq = self.seq.wrapping_add(1);
            let start = self.buf.len();
            if start + len > MAX_PACKET {
                return Err(WireError::Protocol("a packet larger than 1 GiB"));
            }
            self.buf.resize(start + len, 0);
            self.io.read_exact(&mut self.buf[start..])?;
            if len < PIECE {
                return Ok(());
            }
        }
    }

    /// Writes one packet, cut into pieces as the protocol wants.
    fn write_packet(&mut self, payload: &[u8]) -> Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 8);
        let mut last_len = 0;
        for piece in payload.chunks(PIECE) {
            out.extend_from_slice(&(piece.len() as u32).to_le_bytes()[..3]);
            out.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            out.extend_from_slice(piece);
            last_len = piece.len();
        }
        // An empty payload, or one that ends on a full piece, ends with an
        // empty piece.
        if payload.is_empty() || last_len == PIECE {
            out.extend_from_slice(&[0, 0, 0, self.seq]);
            self.seq = self.seq.wrapping_add(1);
        }
        let stream = self.io.get_mut();
        stream.write_all(&out)?;
        stream.flush()?;
        Ok(())
    }

    /// Sends a statement; on return `buf` holds the first packet of the
    /// reply, which is neither an error nor a LOCAL INFILE request.
    fn send(&mut self, sql: &str) -> Result<()> {
        if self.broken {
            return Err(WireError::Protocol("a result set was left unread"));
        }
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(0x03); // COM_QUERY
        payload.extend_from_slice(sql.as_bytes());
        self.seq = 0;
        self.write_packet(&payload)?;
        self.read_packet()?;
        match self.buf.first() {
            Some(0xFF) => Err(server_error(&self.buf)),
            Some(0xFB) => Err(WireError::Protocol("an unasked LOCAL INFILE request")),
            None => Err(WireError::Protocol("an empty reply")),
            Some(_) => Ok(()),
        }
    }

    /// Runs a statement, reading past any rows it returns.
    pub fn query_drop(&mut self, sql: &str) -> Result<()> {
        let mut rows = self.query(sql)?;
        while rows.next()?.is_some() {}
        Ok(())
    }

    /// Runs a statement and returns its rows, to be read to the end.
    pub fn query(&mut self, sql: &str) -> Result<Rows<'_>> {
        self.send(sql)?;
        if self.buf[0] == 0x00 {
            check_single_result(ok_status(&self.buf))?;
            return Ok(Rows {
                conn: self,
                types: Vec::new(),
                spans: Vec::new(),
                done: true,
            });
        }
        let (count, _) = lenenc(&self.buf, 0).ok_or(WireError::Protocol("a bad column count"))?;
        // Each column is a packet of its own, so the count is bounded by
        // what actually arrives; this only caps the up-front reservation.
        let mut types = Vec::with_capacity((count as usize).min(4096));
        for _ in 0..count {
            self.read_packet()?;
            let column = ParseBuf(&self.buf)
                .parse::<Column>(())
                .map_err(|_| WireError::Protocol("a bad column definition"))?;
            types.push(column.column_type());
        }
        self.read_packet()?;
        if !is_eof(&self.buf) {
            return Err(WireError::Protocol("no end after the column definitions"));
        }
        self.broken = true;
        Ok(Rows {
            conn: self,
            types,
            spans: Vec::new(),
            done: false,
        })
    }
}

/// A result set being read. Dropped before its end, it leaves the
/// connection unusable (the rest of the rows are still on the way).
pub struct Rows<'c> {
    conn: &'c mut Conn,
    types: Vec<ColumnType>,
    spans: Vec<Span>,
    done: bool,
}

impl Rows<'_> {
    /// The type of each column, as the server describes the result.
    pub fn column_types(&self) -> &[ColumnType] {
        &self.types
    }

    /// The next row; `None` after the last.
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        if self.done {
            return Ok(None);
        }
        self.conn.read_packet()?;
        let buf = &self.conn.buf;
        if is_eof(buf) {
            self.done = true;
            self.conn.broken = false;
            check_single_result(u16::from_le_bytes([buf[3], buf[4]]))?;
            return Ok(None);
        }
        if buf.first() == Some(&0xFF) {
            // The statement failed mid-way (killed, timed out); the
            // error packet ends the result set.
            self.done = true;
            self.conn.broken = false;
            return Err(server_error(buf));
        }
        cut_row(buf, self.types.len(), &mut self.spans)?;
        Ok(Some(Row::new(&self.conn.buf, &self.spans)))
    }
}

/// Cuts a text-protocol row into `columns` cells.
fn cut_row(buf: &[u8], columns: usize, spans: &mut Vec<Span>) -> Result<()> {
    spans.clear();
    let mut at = 0;
    for _ in 0..columns {
        if buf.get(at) == Some(&0xFB) {
            spans.push(None);
            at += 1;
            continue;
        }
        let (len, start) = lenenc(buf, at).ok_or(WireError::Protocol("a short row"))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= buf.len())
            .ok_or(WireError::Protocol("a cell past the end of its row"))?;
        spans.push(Some((start, end)));
        at = end;
    }
    if at != buf.len() {
        return Err(WireError::Protocol("a row longer than its columns"));
    }
    Ok(())
}

/// A length-encoded integer at `at`: its value and where what follows it
/// starts. `None` if it is cut short or not an integer (0xFB, 0xFF).
fn lenenc(buf: &[u8], at: usize) -> Option<(u64, usize)> {
    let first = *buf.get(at)?;
    let width = match first {
        0..=0xFA => return Some((u64::from(first), at + 1)),
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        _ => return None,
    };
    let bytes = buf.get(at + 1..at + 1 + width)?;
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(bytes);
    Some((u64::from_le_bytes(le), at + 1 + width))
}

/// An EOF packet (not a row that starts with an 8-byte length).
fn is_eof(buf: &[u8]) -> bool {
    buf.first() == Some(&0xFE) && buf.len() < 9 && buf.len() >= 5
}

/// The status flags of an OK packet.
fn ok_status(buf: &[u8]) -> u16 {
    let after = lenenc(buf, 1).and_then(|(_, at)| lenenc(buf, at));
    match after {
        Some((_, at)) if buf.len() >= at + 2 => u16::from_le_bytes([buf[at], buf[at + 1]]),
        _ => 0,
    }
}

/// This reader runs one statement at a time: a second result set would
/// mean the stream holds something it does not expect.
fn check_single_result(status: u16) -> Result<()> {
    if StatusFlags::from_bits_truncate(status).contains(StatusFlags::SERVER_MORE_RESULTS_EXISTS) {
        return Err(WireError::Protocol("more than one result set"));
    }
    Ok(())
}

/// An error packet: code, SQL state, message.
fn server_error(buf: &[u8]) -> WireError {
    let code = match buf {
        [_, a, b, ..] => u16::from_le_bytes([*a, *b]),
        _ => 0,
    };
    let rest = buf.get(3..).unwrap_or_default();
    let (state, message) = match rest {
        [b'#', state @ ..] if state.len() >= 5 => (&state[..5], &state[5..]),
        _ => (&b"HY000"[..], rest),
    };
    WireError::Server {
        code,
        state: String::from_utf8_lossy(state).into_owned(),
        message: String::from_utf8_lossy(message).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_cut_into_cells_and_nulls() {
        // "7", NULL, "", and a 300-byte cell (0xFC length).
        let mut row = vec![1, b'7', 0xFB, 0];
        row.extend_from_slice(&[0xFC, 0x2C, 0x01]);
        row.extend(std::iter::repeat_n(b'x', 300));
        let mut spans = Vec::new();
        cut_row(&row, 4, &mut spans).unwrap();
        let r = Row::new(&row, &spans);
        assert_eq!(r.get(0), Some(&b"7"[..]));
        assert_eq!(r.get(1), None);
        assert_eq!(r.get(2), Some(&b""[..]));
        assert_eq!(r.get(3).map(<[u8]>::len), Some(300));
    }

    #[test]
    fn forged_rows_are_errors_not_panics() {
        let mut spans = Vec::new();
        for (bytes, columns) in [
            (&[][..], 1),
            (&[5, b'a'][..], 1),
            (&[1, b'a', 1, b'b'][..], 1),
            (
                &[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF][..],
                1,
            ),
            (&[0xFC, 1][..], 1),
            (&[0xFF][..], 1),
        ] {
            assert!(
                matches!(
                    cut_row(bytes, columns, &mut spans),
                    Err(WireError::Protocol(_))
                ),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn error_packets_carry_code_state_and_message() {
        let e = server_error(b"\xFF\x15\x04#28000Access denied");
        match e {
            WireError::Server {
                code,
                state,
                message,
            } => assert_eq!((code, &*state, &*message), (1045, "28000", "Access denied")),
            other => panic!("{other}"),
        }
    }
}
