//! The ephemeral environment against its guest contract (docs/image.md):
//! a recording stub on loopback plays the MAAS side (it is a stub, not
//! the sim target, which another module implements), reached from the
//! guest through QEMU user networking (10.0.2.2 is the host's loopback).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};

/// One request the guest made.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub form: Vec<(String, String)>,
}

impl Request {
    pub fn field(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn fields(&self, key: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Clone)]
struct Stub {
    cloud_config: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

/// The stub server: serves `cloud_config` at /cloud-config, answers
/// is_registered with `false`, records everything.
pub struct MaasStub {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MaasStub {
    pub async fn start(cloud_config: impl FnOnce(u16) -> String) -> MaasStub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = Stub {
            cloud_config: cloud_config(port),
            requests: requests.clone(),
        };
        let app = axum::Router::new().fallback(handle).with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MaasStub {
            port,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for MaasStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(stub): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> String {
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let request = Request {
        method: method.to_string(),
        path_and_query: path_and_query.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        form: match multipart_boundary(&headers) {
            Some(b) => parse_multipart(&String::from_utf8_lossy(&body), &b),
            None => parse_form(&String::from_utf8_lossy(&body)),
        },
    };
    stub.requests.lock().unwrap().push(request);
    if path_and_query.starts_with("/cloud-config") {
        stub.cloud_config.clone()
    } else if path_and_query.contains("op=is_registered") {
        "false".into()
    } else {
        "{}".into()
    }
}

/// The boundary of a multipart/form-data request.
fn multipart_boundary(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get("content-type")?.to_str().ok()?;
    ct.strip_prefix("multipart/form-data; boundary=")
        .map(|b| b.trim_matches('"').to_string())
}

/// multipart/form-data -> (part name, content) pairs, in order (files and
/// fields alike; the test's bodies are text).
pub fn parse_multipart(body: &str, boundary: &str) -> Vec<(String, String)> {
    body.split(&format!("--{boundary}"))
        .skip(1)
        .filter_map(|part| {
            let (head, value) = part.split_once("\r\n\r\n")?;
            let name = head.split("name=\"").nth(1)?.split('"').next()?;
            Some((
                name.to_string(),
                value.strip_suffix("\r\n").unwrap_or(value).to_string(),
            ))
        })
        .collect()
}

/// application/x-www-form-urlencoded -> pairs, in order.
pub fn parse_form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("valid %XX"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8 form value")
}

/// QEMU arguments for two NICs on user networking: virtio (boots) + e1000.
pub fn two_nics(boot_mac: &str, other_mac: &str) -> Vec<String> {
    [
        "-netdev".to_string(),
        "user,id=n0".to_string(),
        "-device".to_string(),
        format!("virtio-net-pci,netdev=n0,mac={boot_mac}"),
        "-netdev".to_string(),
        "user,id=n1,restrict=on".to_string(),
        "-device".to_string(),
        format!("e1000,netdev=n1,mac={other_mac}"),
    ]
    .to_vec()
}
