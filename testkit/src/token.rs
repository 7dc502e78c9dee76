//! A bearer-token server for the registry (Docker's token authentication):
//! it checks HTTP basic credentials and issues ES256-signed JWTs with the
//! `access` claim the registry verifies, signed by a key and self-signed
//! certificate made at run time. Only repositories under [`GRANTED`] are
//! granted.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

pub const SERVICE: &str = "servin-test-registry";
pub const ISSUER: &str = "servin-test-issuer";
/// The repositories the account may use: like Docker Hub's token server,
/// this one answers a request for any other repository with a token that
/// grants nothing there (and the registry then refuses the request).
pub const GRANTED: &str = "private/";

pub struct TokenServer {
    pub port: u16,
    pub cert_pem: String,
    cert_der: Vec<u8>,
    pkcs8: Vec<u8>,
    user: String,
    password: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `repository:NAME:pull,push` into the claim's access entry.
fn access_of(scope: &str) -> Option<serde_json::Value> {
    let (typ, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some(serde_json::json!({
        "type": typ,
        "name": name,
        "actions": actions.split(',').filter(|a| !a.is_empty()).collect::<Vec<_>>(),
    }))
}

fn sign(pkcs8: &[u8], cert_der: &[u8], sub: &str, scopes: &[String]) -> String {
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng).unwrap();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(cert_der)],
    });
    let t = now();
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": sub,
        "aud": SERVICE,
        "exp": t + 600,
        "nbf": t - 60,
        "iat": t,
        "jti": format!("{t}-{}", std::process::id()),
        "access": scopes.iter().filter_map(|s| access_of(s)).collect::<Vec<_>>(),
    });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = key.sign(&rng, input.as_bytes()).unwrap();
    format!("{input}.{}", b64url(sig.as_ref()))
}

fn decode_query(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TokenServer {
    /// Starts a token server accepting `user`/`password`.
    pub fn start(user: &str, password: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap()
            .as_ref()
            .to_vec();
        let key_pair = rcgen::KeyPair::try_from(pkcs8.as_slice()).unwrap();
        let params = rcgen::CertificateParams::new(vec!["servin-token".to_string()]).unwrap();
        let cert = params.self_signed(&key_pair).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let mut server = Self {
            port,
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            pkcs8,
            user: user.to_string(),
            password: password.to_string(),
            stop: Arc::clone(&stop),
            thread: None,
        };
        let (pkcs8, cert_der) = (server.pkcs8.clone(), server.cert_der.clone());
        let (u, p) = (server.user.clone(), server.password.clone());
        server.thread = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = serve(stream, &pkcs8, &cert_der, &u, &p);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
        server
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// A token for `scopes`, as the server would issue it.
    pub fn token(&self, scopes: &[String]) -> String {
        sign(&self.pkcs8, &self.cert_der, &self.user, scopes)
    }
}

fn serve(
    mut stream: TcpStream,
    pkcs8: &[u8],
    cert_der: &[u8],
    user: &str,
    password: &str,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.lines();
    let target = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_string();
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let (status, body) = if authorization.as_deref() == Some(expected.as_str()) {
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let scopes: Vec<String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == "scope")
            .flat_map(|(_, v)| {
                decode_query(v)
                    .split(' ')
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .filter(|s| s.starts_with(&format!("repository:{GRANTED}")))
            .collect();
        let token = sign(pkcs8, cert_der, user, &scopes);
        (
            "200 OK",
            serde_json::json!({"token": token, "access_token": token, "expires_in": 600})
                .to_string(),
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.to_string(),
        )
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
