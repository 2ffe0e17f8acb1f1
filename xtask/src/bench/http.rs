//! Just enough HTTP/1.0 for the Kubernetes stand-in's own endpoints on loopback (its stats and
//! status changes): one request per connection, the body read until the server closes it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Sends `method url` with `body` and returns the response body, failing on a status other
/// than 2xx. `url` is `http://HOST:PORT/PATH`.
pub(crate) fn request(method: &str, url: &str, body: &[u8]) -> Result<Vec<u8>> {
    let (host, path) = split_url(url)?;
    let mut stream =
        TcpStream::connect(host).with_context(|| format!("cannot connect to {host} ({url})"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .with_context(|| format!("reading the response of {method} {url}"))?;
    let (status, body) = parse_response(&response).with_context(|| format!("{method} {url}"))?;
    if !(200..300).contains(&status) {
        bail!(
            "{method} {url} answered {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
    }
    Ok(body)
}

/// `GET url`, as JSON.
pub(crate) fn get_json(url: &str) -> Result<serde_json::Value> {
    let body = request("GET", url, b"")?;
    serde_json::from_slice(&body).with_context(|| format!("GET {url}: the body is not JSON"))
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn split_url(url: &str) -> Result<(&str, &str)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url} is not an http:// URL"))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// The status code and the body (de-chunked when the server chunked it).
fn parse_response(response: &[u8]) -> Result<(u16, Vec<u8>)> {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the response has no end of headers")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("the response has no status line")?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk size line is cut")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            bail!("a chunk is cut");
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_path() {
        assert_eq!(
            split_url("http://127.0.0.1:5000/moto-api/recorder/start-recording").ok(),
            Some(("127.0.0.1:5000", "/moto-api/recorder/start-recording"))
        );
        assert_eq!(
            split_url("http://127.0.0.1:5000").ok(),
            Some(("127.0.0.1:5000", "/"))
        );
        assert!(split_url("https://example.com/").is_err());
    }

    #[test]
    fn plain_and_chunked_bodies_are_read() {
        let plain = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"writes\":3}";
        assert_eq!(
            parse_response(plain).ok(),
            Some((200, b"{\"writes\":3}".to_vec()))
        );
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot \r\n5\r\nfound\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).ok(),
            Some((404, b"not found".to_vec()))
        );
        assert!(parse_response(b"HTTP/1.0 200 OK\r\n").is_err());
    }
}
