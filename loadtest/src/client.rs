//! One keep-alive HTTP/1.1 connection, reopened when it breaks.
//!
//! Written on the socket by hand (as wrk is), in the task that sends: the
//! generator runs on the same two cores as the service, so what it spends per
//! request is taken from the service. A hyper client connection lives in a task
//! of its own, so each request crossed two tasks and two channels; measured in
//! benches/BENCHMARKS.md ("A leaner generator"). Answers are read by
//! `Content-Length`, or to the end of the connection: the service never chunks
//! the answers the generator asks for.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Bytes read at once: more than any answer the generator asks for.
const INPUT: usize = 16 * 1024;

pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    input: BytesMut,
    /// Whether the last answer carried `Retry-After`.
    pub retry_after: bool,
}

/// Where an answer's body ends.
enum Framing {
    Length(usize),
    Close,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            out: Vec::with_capacity(1024),
            input: BytesMut::with_capacity(INPUT),
            retry_after: false,
        }
    }

    /// Drops the connection, as after a request given up half way: the next
    /// request opens another.
    pub fn close(&mut self) {
        self.stream = None;
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), Error> {
        let result = self.exchange(request).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), Error> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await?.to_bytes();
        self.out.clear();
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        for piece in [parts.method.as_str(), " ", target, " HTTP/1.1\r\n"] {
            self.out.extend_from_slice(piece.as_bytes());
        }
        for (name, value) in &parts.headers {
            self.out.extend_from_slice(name.as_str().as_bytes());
            self.out.extend_from_slice(b": ");
            self.out.extend_from_slice(value.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() {
            self.out.extend_from_slice(b"content-length: ");
            self.out
                .extend_from_slice(body.len().to_string().as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(&body);

        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().ok_or("no connection")?;
        stream.write_all(&self.out).await?;

        // Room for a whole answer, so that one read takes it: reserving
        // reclaims the buffer once the last answer's body has been dropped.
        self.input.clear();
        self.input.reserve(INPUT);
        let (status, head, framing, close) = loop {
            if stream.read_buf(&mut self.input).await? == 0 {
                return Err("the connection closed before the answer's head".into());
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = response.parse(&self.input)? {
                let status = StatusCode::from_u16(response.code.unwrap_or(0))?;
                let mut framing = Framing::Close;
                let mut close = false;
                self.retry_after = false;
                for h in response.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        framing = Framing::Length(std::str::from_utf8(h.value)?.trim().parse()?);
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err("a chunked answer, which this client does not read".into());
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        close = h.value.eq_ignore_ascii_case(b"close");
                    } else if h.name.eq_ignore_ascii_case("retry-after") {
                        self.retry_after = true;
                    }
                }
                if status == StatusCode::NOT_MODIFIED || status == StatusCode::NO_CONTENT {
                    framing = Framing::Length(0);
                }
                break (status, head, framing, close);
            }
        };
        let body = match framing {
            Framing::Length(length) => {
                while self.input.len() < head + length {
                    if stream.read_buf(&mut self.input).await? == 0 {
                        return Err("the connection closed inside the answer's body".into());
                    }
                }
                self.input.split_to(head + length).split_off(head).freeze()
            }
            Framing::Close => {
                while stream.read_buf(&mut self.input).await? > 0 {}
                self.stream = None;
                return Ok((status, self.input.split().split_off(head).freeze()));
            }
        };
        if close {
            self.stream = None;
        }
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server that answers each request on one connection with the next of
    /// `answers`, written in pieces as a busy peer might, and hands back what
    /// it was sent.
    async fn serve(answers: Vec<&'static [u8]>) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            for answer in answers {
                let mut buf = [0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap();
                received.extend_from_slice(&buf[..n]);
                let (first, rest) = answer.split_at(answer.len() / 2);
                stream.write_all(first).await.unwrap();
                stream.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                stream.write_all(rest).await.unwrap();
            }
            received
        });
        (addr, server)
    }

    fn post(body: &'static str) -> Request<Full<Bytes>> {
        Request::post("/v1/petitions/p/signatures")
            .header(http::header::HOST, "loadtest")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    #[tokio::test]
    async fn answers_on_one_kept_connection_are_read_by_their_length() {
        let (addr, server) = serve(vec![
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 12\r\n\r\n{\"ok\":true}\n",
            b"HTTP/1.1 304 Not Modified\r\netag: W/\"1\"\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n42",
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\ncontent-length: 0\r\n\r\n",
        ])
        .await;
        let mut conn = Conn::new(addr);
        let (status, body) = conn.send(post("{\"a\":1}")).await.unwrap();
        assert_eq!((status.as_u16(), &body[..]), (202, &b"{\"ok\":true}\n"[..]));
        let (status, body) = conn.send(post("")).await.unwrap();
        assert_eq!((status.as_u16(), body.len()), (304, 0));
        let (status, body) = conn.send(post("")).await.unwrap();
        assert_eq!((status.as_u16(), &body[..]), (200, &b"42"[..]));
        assert!(!conn.retry_after);
        let (status, _) = conn.send(post("")).await.unwrap();
        assert_eq!(status.as_u16(), 503);
        assert!(conn.retry_after, "Retry-After is noticed");
        let received = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(
            received.starts_with(
                "POST /v1/petitions/p/signatures HTTP/1.1\r\nhost: loadtest\r\ncontent-length: 7\r\n\r\n{\"a\":1}POST "
            ),
            "{received}"
        );
    }

    #[tokio::test]
    async fn an_answer_without_length_ends_with_its_connection() {
        let (addr, server) = serve(vec![
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it",
        ])
        .await;
        let mut conn = Conn::new(addr);
        let (status, body) = conn.send(post("")).await.unwrap();
        assert_eq!((status.as_u16(), &body[..]), (200, &b"all of it"[..]));
        assert!(conn.stream.is_none(), "a closed connection is not reused");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_connection_closed_mid_answer_is_an_error_and_is_reopened() {
        let (addr, server) =
            serve(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort"]).await;
        let mut conn = Conn::new(addr);
        assert!(conn.send(post("")).await.is_err());
        assert!(conn.stream.is_none(), "a broken connection is not reused");
        server.await.unwrap();
    }
}
